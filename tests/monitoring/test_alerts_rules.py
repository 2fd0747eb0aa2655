"""Alert rules: durations, checks with clear messages, loopml.toml, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core import ConfigError, Settings, ValidationError, load_settings
from loopml.monitoring import DEFAULT_RULES, AlertRule, load_rules
from loopml.monitoring._rules import default_webhook, format_duration, parse_duration
from tests.monitoring.alert_helpers import sample


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        (90, 90),
        ("2d", 172800),
    ],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "-1", -3, "1.5h", "", True])
def test_bad_durations_name_the_value(text: object) -> None:
    with pytest.raises(ValidationError, match="for must"):
        parse_duration(text)


def test_durations_format_as_prometheus_writes_them() -> None:
    assert [format_duration(s) for s in (0, 30, 300, 5400, 0.25)] == [
        "0s",
        "30s",
        "5m",
        "1h30m",
        "250ms",
    ]


def test_a_rule_matches_by_name_and_every_matcher() -> None:
    rule = AlertRule(
        name="auc_low",
        metric="loopml_model_performance",
        labels={"metric": "roc_auc"},
        comparison="<",
        threshold=0.7,
    )
    assert rule.matches(sample("loopml_model_performance", 0.6, metric="roc_auc"))
    assert not rule.matches(sample("loopml_model_performance", 0.6, metric="f1"))
    assert not rule.matches(sample("loopml_model_performance", 0.6))
    assert not rule.matches(sample("loopml_drift_share", 0.6, metric="roc_auc"))
    assert rule.breached(0.69) and not rule.breached(0.7) and not rule.breached(float("nan"))
    assert rule.condition == 'loopml_model_performance{metric="roc_auc"} < 0.7'


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "drift-high"}, "alert rule name must be"),
        ({"metric": "drift share"}, "metric must be a sample name"),
        ({"comparison": "=="}, "comparison must be one of >, >=, <, <="),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"severity": "page"}, "severity must be one of info, warning, critical"),
        ({"for_s": "soon"}, "for must be a duration"),
        ({"labels": {"metric": 1}}, "label matchers must be"),
        ({"webhook": "slack.example"}, "webhook must be an http"),
    ],
)
def test_bad_rules_say_what_is_wrong(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "name": "drift_high",
        "metric": "loopml_drift_share",
        "comparison": ">=",
        "threshold": 0.5,
        **changes,
    }
    with pytest.raises(ValidationError, match=message):
        AlertRule(**fields)


def settings_with(tmp_path: Path, toml: str) -> Settings:
    (tmp_path / "loopml.toml").write_text(toml, encoding="utf-8")
    return load_settings(project_dir=tmp_path, environ={})


def test_without_a_config_the_defaults_are_in_force(tmp_path: Path) -> None:
    settings = load_settings(project_dir=tmp_path, environ={})
    assert load_rules(settings) == list(DEFAULT_RULES)
    assert {r.name for r in DEFAULT_RULES} >= {"dataset_drift", "performance_drop"}
    assert default_webhook(settings) is None


def test_declared_rules_add_to_and_replace_defaults(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        """
[monitoring]
webhook = "https://hooks.example.com/T000/B000/XXX"

[[monitoring.alerts]]
name = "dataset_drift"
metric = "loopml_drift_share"
comparison = ">"
threshold = 0.3
for = "10m"
severity = "critical"

[[monitoring.alerts]]
name = "latency_p99"
metric = "loopml_latency_ms"
labels = { quantile = "0.99" }
comparison = ">="
threshold = 250
webhook = "http://127.0.0.1:9000/hook"
summary = "p99 latency over 250 ms"
""",
    )
    rules = {r.name: r for r in load_rules(settings)}
    assert set(rules) == {r.name for r in DEFAULT_RULES} | {"latency_p99"}
    assert (rules["dataset_drift"].threshold, rules["dataset_drift"].for_s) == (0.3, 600)
    assert rules["dataset_drift"].severity == "critical"
    assert rules["latency_p99"].labels == {"quantile": "0.99"}
    assert rules["latency_p99"].describe() == "p99 latency over 250 ms"
    assert default_webhook(settings) == "https://hooks.example.com/T000/B000/XXX"


def test_defaults_can_be_turned_off(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "[monitoring]\ndefault_alerts = false\n")
    assert load_rules(settings) == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[monitoring.alerts]]\nname = "x"\n', r"#1: missing key\(s\) metric, comparison"),
        (
            '[[monitoring.alerts]]\nname = "x"\nmetric = "m"\ncomparison = ">"\nthreshold = 1\n'
            "treshold = 2\n",
            r"#1: unknown key\(s\) treshold",
        ),
        (
            '[[monitoring.alerts]]\nname = "x"\nmetric = "m"\ncomparison = "=>"\nthreshold = 1\n',
            "#1: alert rule 'x': comparison must be one of",
        ),
        ("[monitoring]\nalerts = 3\n", r"must be an array of tables"),
        ('[monitoring]\nwebhook = "ftp://x"\n', r"\[monitoring\] webhook must be"),
    ],
)
def test_a_bad_config_names_the_file_and_the_rule(tmp_path: Path, toml: str, message: str) -> None:
    settings = settings_with(tmp_path, toml)
    with pytest.raises(ConfigError, match=message) as caught:
        load_rules(settings)
        default_webhook(settings)
    assert "loopml.toml" in str(caught.value)
