"""Trigger logic on monitoring samples: drift share, a performance drop with enough label
coverage, new labels, a due schedule."""

from __future__ import annotations

import datetime as dt

from loopml.loop import LoopPolicy, Triggers, check_triggers
from tests.loop.helpers import Sample

D = {"deployment": "api"}


def _policy(**triggers: object) -> LoopPolicy:
    return LoopPolicy("api", "churn", "p:x", triggers=Triggers(**triggers))  # type: ignore[arg-type]


def _check(policy: LoopPolicy, samples: list[Sample], **kwargs: object) -> list[str]:
    values = {
        "served": "churn@3",
        "served_metrics": {"validation.roc_auc": 0.9},
        "new_labels": None,
        "schedule_slot": None,
        **kwargs,
    }
    return [f.trigger for f in check_triggers(policy, samples, **values)]  # type: ignore[arg-type]


def _performance(value: float, coverage: float) -> list[Sample]:
    version = {**D, "model_version": "churn@3"}
    return [
        Sample("loopml_model_performance", {**version, "metric": "roc_auc"}, value),
        Sample("loopml_model_performance", {**version, "metric": "accuracy"}, 0.1),
        Sample("loopml_label_coverage", version, coverage),
    ]


def test_drift_share_at_or_over_the_threshold_fires() -> None:
    policy = _policy(drift_share=0.3)
    assert _check(policy, [Sample("loopml_drift_share", D, 0.29)]) == []
    assert _check(policy, [Sample("loopml_drift_share", D, 0.3)]) == ["drift"]
    assert _check(policy, [Sample("loopml_drift_share", D, float("nan"))]) == []
    assert _check(_policy(new_labels=5), [Sample("loopml_drift_share", D, 1.0)]) == []  # drift off


def test_a_performance_drop_needs_enough_label_coverage() -> None:
    policy = _policy(performance_drop=0.05, min_label_coverage=0.5)
    assert _check(policy, _performance(0.84, 0.9)) == ["performance"]
    assert _check(policy, _performance(0.86, 0.9)) == []  # dropped 0.04 only
    assert _check(policy, _performance(0.70, 0.4)) == []  # too few labels to tell
    assert _check(policy, _performance(0.70, 0.9), served="churn@4") == []  # another version
    assert _check(policy, _performance(0.70, 0.9), served_metrics={}) == []  # no baseline
    assert _check(policy, _performance(0.70, 0.9), served_metrics={"test.roc_auc": 0.72}) == []
    [fired] = check_triggers(
        policy,
        _performance(0.84, 0.9),
        served="churn@3",
        served_metrics={"validation.roc_auc": 0.9},
        new_labels=None,
        schedule_slot=None,
    )
    assert "roc_auc of churn@3 is 0.84, 0.06 worse than its validation.roc_auc 0.9" in fired.reason


def test_for_a_loss_the_drop_is_a_rise() -> None:
    policy = _policy(performance_drop=0.1, performance_metric="log_loss")
    version = {**D, "model_version": "churn@3"}
    samples = [
        Sample("loopml_model_performance", {**version, "metric": "log_loss"}, 0.5),
        Sample("loopml_label_coverage", version, 1.0),
    ]
    assert _check(policy, samples, served_metrics={"validation.log_loss": 0.3}) == ["performance"]
    assert _check(policy, samples, served_metrics={"validation.log_loss": 0.45}) == []


def test_new_labels_and_schedule() -> None:
    policy = _policy(new_labels=100, schedule="0 3 * * *")
    assert _check(policy, [], new_labels=99) == []
    assert _check(policy, [], new_labels=100) == ["new_labels"]
    slot = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    assert _check(policy, [], schedule_slot=slot) == ["schedule"]
    assert _check(
        policy, [Sample("loopml_drift_share", D, 0.9)], new_labels=500, schedule_slot=slot
    ) == ["new_labels", "schedule"]
