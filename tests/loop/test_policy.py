"""Policies from loopml.toml or Python: defaults, durations, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core import ConfigError, load_settings
from loopml.loop import (
    CanaryStep,
    Evaluation,
    Guardrails,
    LoopPolicy,
    Rollout,
    Triggers,
    load_policies,
    parse_duration,
    policy_from_dict,
)

TOML = """
[loop.churn-api]
model = "churn"
pipeline = "train_pipe.py:train"
pipeline_params = { alpha = 0.1 }
cutoff_param = "cutoff_ms"

[loop.churn-api.triggers]
drift_share = 0.3
performance_drop = 0.05
min_label_coverage = 0.6
new_labels = 5000
schedule = "0 3 * * *"

[loop.churn-api.evaluation]
metric = "log_loss"
min_gain = 0.002
max_wait_s = "2d"

[loop.churn-api.rollout]
steps = [{ weight = 0.1, predictions = 500 }, { weight = 0.5, seconds = "1h" }]
max_error_rate = 0.01
max_latency_p95_ms = 50
sticky_key = "customer_id"

[loop.churn-api.guardrails]
cooldown_s = "6h"
max_retrains_per_day = 2

[loop.fraud-api]
model = "fraud"
pipeline = "pipes:fraud"

[loop.fraud-api.triggers]
schedule = "@daily"
"""


def test_policies_load_from_loopml_toml(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text(TOML)
    settings = load_settings(project_dir=tmp_path, environ={})
    churn, fraud = load_policies(settings)
    assert churn.deployment == "churn-api" and churn.model == "churn"
    assert dict(churn.pipeline_params) == {"alpha": 0.1} and churn.cutoff_param == "cutoff_ms"
    assert churn.triggers == Triggers(
        drift_share=0.3,
        performance_drop=0.05,
        min_label_coverage=0.6,
        new_labels=5000,
        schedule="0 3 * * *",
    )
    assert churn.evaluation == Evaluation(metric="log_loss", min_gain=0.002, max_wait_s=172800)
    assert churn.rollout.steps == (
        CanaryStep(0.1, predictions=500),
        CanaryStep(0.5, seconds=3600),
    )
    assert churn.rollout.max_latency_p95_ms == 50 and churn.rollout.max_error_rate == 0.01
    assert churn.rollout.sticky_key == "customer_id"
    assert churn.guardrails == Guardrails(cooldown_s=21600, max_retrains_per_day=2)
    assert churn.performance_metric == "log_loss"
    assert fraud.triggers == Triggers(schedule="@daily") and fraud.rollout == Rollout()
    with pytest.raises(TypeError):
        churn.pipeline_params["alpha"] = 1  # type: ignore[index]


def test_no_loop_table_means_no_policies(tmp_path: Path) -> None:
    assert load_policies(load_settings(project_dir=tmp_path, environ={})) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"pipeline": "p:x"}, "loop.api needs model"),
        ({"model": "m"}, "loop.api needs pipeline"),
        (
            {"model": "m@3", "pipeline": "p:x"},
            "loop.api.model must be a model name without @version",
        ),
        ({"model": "m", "pipeline": "p:x", "colour": 1}, "loop.api: unknown key(s) colour"),
        (
            {"model": "m", "pipeline": "p:x", "triggers": {"drift_share": 1.5}},
            "loop.api.triggers.drift_share must be at most 1; got 1.5",
        ),
        (
            {"model": "m", "pipeline": "p:x", "triggers": {"schedule": "61 * * * *"}},
            "loop.api.triggers.schedule: ",
        ),
        (
            {"model": "m", "pipeline": "p:x", "triggers": {"new_labels": 0}},
            "loop.api.triggers.new_labels must be a whole number >= 1; got 0",
        ),
        (
            {"model": "m", "pipeline": "p:x", "evaluation": {"metric": "auc"}},
            "loop.api.evaluation.metric must be one of roc_auc",
        ),
        (
            {"model": "m", "pipeline": "p:x", "evaluation": {"min_rows": 10, "window_rows": 5}},
            "loop.api.evaluation.min_rows must be at most window_rows (5); got 10",
        ),
        (
            {"model": "m", "pipeline": "p:x", "rollout": {"steps": [{"weight": 0.2}]}},
            "loop.api.rollout.steps[0] needs predictions or seconds",
        ),
        (
            {
                "model": "m",
                "pipeline": "p:x",
                "rollout": {"steps": [{"weight": 0.2, "seconds": 5}, {"weight": 2, "seconds": 5}]},
            },
            "loop.api.rollout.steps[1].weight must be at most 1; got 2",
        ),
        (
            {"model": "m", "pipeline": "p:x", "rollout": {"steps": []}},
            "loop.api.rollout.steps must be a non-empty list of steps",
        ),
        (
            {"model": "m", "pipeline": "p:x", "rollout": {"sticky_key": 7}},
            "loop.api.rollout.sticky_key must be a request field name; got 7",
        ),
        (
            {"model": "m", "pipeline": "p:x", "guardrails": {"cooldown_s": "soon"}},
            "loop.api.guardrails.cooldown_s must be seconds or a duration like",
        ),
        (
            {"model": "m", "pipeline": "p:x", "guardrails": {"frozen": "yes"}},
            "loop.api.guardrails.frozen must be true or false",
        ),
        ({"model": "m", "pipeline": "p:x", "triggers": 3}, "loop.api.triggers must be a table"),
        (
            {"model": "m", "pipeline": "p:x", "guardrails": {"cooldown_s": float("inf")}},
            "loop.api.guardrails.cooldown_s must be a finite number; got inf",
        ),
        (
            {"model": "m", "pipeline": "p:x", "evaluation": {"min_gain": float("nan")}},
            "loop.api.evaluation.min_gain must be a finite number; got nan",
        ),
        ({"model": "m", "pipeline": "p:x"}, "loop.api.triggers needs at least one of"),
        (
            {"model": "m", "pipeline": "train_pipe", "triggers": {"new_labels": 5}},
            "loop.api.pipeline must be a reference like module:name or file.py:name",
        ),
        (
            {
                "model": "m",
                "pipeline": "p:x",
                "rollout": {
                    "steps": [{"weight": 0.9, "predictions": 5}, {"weight": 0.1, "predictions": 5}]
                },
            },
            "loop.api.rollout.steps[1].weight must be at least the step before's 0.9",
        ),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_from_dict("api", table)
    assert message in str(caught.value)


def test_a_bad_file_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text(
        '[loop.api]\nmodel = "m"\npipeline = "p:x"\n[loop.api.rollout]\nmax_error_rate = -1\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_policies(load_settings(project_dir=tmp_path, environ={}))
    assert str(caught.value).startswith(
        f"{tmp_path / 'loopml.toml'}: loop.api.rollout.max_error_rate"
    )


def test_python_policies_check_their_values_too() -> None:
    with pytest.raises(
        ConfigError, match=r"guardrails.max_retrains_per_day must be a whole number"
    ):
        Guardrails(max_retrains_per_day=0)
    with pytest.raises(ConfigError, match=r"loop.pipeline must be a non-empty string"):
        LoopPolicy("api", "m", "")
    with pytest.raises(ConfigError, match=r"loop.rollout must be a Rollout"):
        LoopPolicy("api", "m", "p:x", rollout={"steps": []})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration("x", text) == seconds
