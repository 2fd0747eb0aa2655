"""Alert rules: a sample name, label matchers, a comparison with a threshold, a ``for``
duration and a severity; declared in ``loopml.toml`` or in Python.

A rule matches every sample with its name whose labels include all of its matchers; each
matching sample is one series, alerted on separately (one alert per rule and label set).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loopml.core import ConfigError, Settings, ValidationError, load_config_table

__all__ = [
    "COMPARISONS",
    "DEFAULT_RULES",
    "SEVERITIES",
    "AlertRule",
    "SampleLike",
    "default_webhook",
    "default_window",
    "format_duration",
    "load_rules",
    "parse_duration",
]

COMPARISONS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
SEVERITIES = ("info", "warning", "critical")
# Prometheus alert and label names: a rule's name is both, so it must be valid as either.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_METRIC = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RULE_KEYS = {
    "name",
    "metric",
    "labels",
    "comparison",
    "threshold",
    "for",
    "severity",
    "webhook",
    "summary",
}


class SampleLike(Protocol):
    """What rules read: a monitoring sample (``loopml.monitoring.MetricSample``)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


def parse_duration(text: object, *, what: str = "for") -> float:
    """Seconds in ``"90s"``, ``"5m"``, ``"1h30m"``, ``"0"`` or a number of seconds.

    Raises:
        ValidationError: not a duration, or negative.
    """
    if isinstance(text, bool):
        raise ValidationError(f"{what} must be a duration like '5m' or '30s'; got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValidationError(f"{what} must not be negative; got {text!r}")
        return float(text)
    if isinstance(text, str):
        spelled = text.strip()
        if spelled == "0":
            return 0.0
        parts = _DURATION.findall(spelled)
        if parts and "".join(n + u for n, u in parts) == spelled:
            return float(sum(int(n) * _UNIT_S[u] for n, u in parts))
    raise ValidationError(
        f"{what} must be a duration like '5m', '30s' or '1h30m' (units ms, s, m, h, d, w); "
        f"got {text!r}"
    )


def format_duration(seconds: float) -> str:
    """``seconds`` as Prometheus writes durations: ``"5m"``, ``"1h30m"``, ``"0s"``."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


@dataclass(frozen=True)
class AlertRule:
    """When to alert: ``metric{labels} <comparison> threshold`` held for ``for_s`` seconds.

    ``labels`` are exact matchers: a sample matches when it has each label with that
    value (it may have more labels). ``webhook`` overrides the ``[monitoring] webhook``
    URL for this rule. ``summary`` is a line for people (a default is written for you).
    """

    name: str
    metric: str
    comparison: str
    threshold: float
    for_s: float = 0.0
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    webhook: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        where = f"alert rule {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValidationError(
                f"alert rule name must be 1-64 letters, digits or underscores, not starting "
                f"with a digit (it becomes a Prometheus alert name); got {self.name!r}"
            )
        if not isinstance(self.metric, str) or not _METRIC.match(self.metric):
            raise ValidationError(
                f"{where}: metric must be a sample name like 'loopml_drift_share'; "
                f"got {self.metric!r}"
            )
        if self.comparison not in COMPARISONS:
            raise ValidationError(
                f"{where}: comparison must be one of {', '.join(COMPARISONS)}; "
                f"got {self.comparison!r}"
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise ValidationError(f"{where}: threshold must be a number; got {self.threshold!r}")
        if self.threshold != self.threshold or abs(self.threshold) == float("inf"):
            raise ValidationError(f"{where}: threshold must be finite; got {self.threshold!r}")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "for_s", parse_duration(self.for_s, what=f"{where}: for"))
        if self.severity not in SEVERITIES:
            raise ValidationError(
                f"{where}: severity must be one of {', '.join(SEVERITIES)}; got {self.severity!r}"
            )
        if not isinstance(self.labels, Mapping):
            raise ValidationError(f"{where}: labels must be a table of name = value")
        for key, value in self.labels.items():
            if not isinstance(key, str) or not _LABEL.match(key) or not isinstance(value, str):
                raise ValidationError(
                    f'{where}: label matchers must be name = "value" strings; '
                    f"got {key!r} = {value!r}"
                )
        object.__setattr__(self, "labels", dict(self.labels))
        if self.webhook is not None and not (
            isinstance(self.webhook, str) and self.webhook.startswith(("http://", "https://"))
        ):
            raise ValidationError(
                f"{where}: webhook must be an http:// or https:// URL; got {self.webhook!r}"
            )

    def matches(self, sample: SampleLike) -> bool:
        """Whether ``sample`` is one of this rule's series."""
        return sample.name == self.metric and all(
            sample.labels.get(key) == value for key, value in self.labels.items()
        )

    def breached(self, value: float) -> bool:
        """Whether ``value`` meets the alert condition (NaN never does)."""
        return value == value and COMPARISONS[self.comparison](value, self.threshold)

    @property
    def condition(self) -> str:
        """The condition in words: ``loopml_drift_share{metric="auc"} >= 0.5``."""
        return f"{self.metric}{_selector(self.labels)} {self.comparison} {self.threshold:g}"

    def describe(self) -> str:
        """The summary line people read."""
        return self.summary or f"{self.name}: {self.condition}"

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, where: str = "alert rule") -> AlertRule:
        """A rule from a ``[[monitoring.alerts]]`` table (keys as in docs/monitoring.md).

        Raises:
            ValidationError: an unknown or missing key, or a bad value.
        """
        unknown = sorted(set(table) - _RULE_KEYS)
        if unknown:
            raise ValidationError(
                f"{where}: unknown key(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(_RULE_KEYS))}"
            )
        missing = [key for key in ("name", "metric", "comparison", "threshold") if key not in table]
        if missing:
            raise ValidationError(f"{where}: missing key(s) {', '.join(missing)}")
        return cls(
            name=table["name"],
            metric=table["metric"],
            comparison=table["comparison"],
            threshold=table["threshold"],
            for_s=table.get("for", 0.0),
            severity=table.get("severity", "warning"),
            labels=table.get("labels", {}),
            webhook=table.get("webhook"),
            summary=table.get("summary"),
        )


def _selector(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


DEFAULT_RULES: Sequence[AlertRule] = (
    AlertRule(
        name="dataset_drift",
        metric="loopml_drift_share",
        comparison=">=",
        threshold=0.5,
        severity="warning",
        summary="half or more of the features drifted from the training data",
    ),
    AlertRule(
        name="prediction_drift",
        metric="loopml_prediction_drift_score",
        labels={"statistic": "psi"},
        comparison=">=",
        threshold=0.25,
        severity="warning",
        summary="the predictions' distribution moved (PSI 0.25 or more) from the reference window",
    ),
    AlertRule(
        name="performance_drop",
        metric="loopml_model_performance",
        labels={"metric": "roc_auc"},
        comparison="<",
        threshold=0.7,
        severity="critical",
        summary="ROC AUC on labelled predictions fell below 0.7",
    ),
    AlertRule(
        name="error_rate_high",
        metric="loopml_error_rate",
        comparison=">",
        threshold=0.05,
        for_s=300,
        severity="critical",
        summary="more than 5% of predictions failed",
    ),
)


def _unique(rules: Iterable[AlertRule]) -> list[AlertRule]:
    """The rules, a later one replacing an earlier one of the same name."""
    by_name: dict[str, AlertRule] = {}
    for rule in rules:
        by_name.pop(rule.name, None)
        by_name[rule.name] = rule
    return list(by_name.values())


def load_rules(settings: Settings) -> list[AlertRule]:
    """The rules in force: the defaults, then ``[[monitoring.alerts]]`` from ``loopml.toml``.

    A declared rule with a default's name replaces it; ``[monitoring] default_alerts =
    false`` drops the defaults.

    Raises:
        ConfigError: a rule or ``[monitoring]`` setting is malformed (names the rule).
    """
    table = load_config_table(settings.project_dir, "monitoring")
    path = settings.project_dir / "loopml.toml"
    use_defaults = table.get("default_alerts", True)
    if not isinstance(use_defaults, bool):
        raise ConfigError(f"{path}: [monitoring] default_alerts must be true or false")
    declared = table.get("alerts", [])
    if not isinstance(declared, list) or not all(isinstance(t, dict) for t in declared):
        raise ConfigError(
            f"{path}: monitoring.alerts must be an array of tables [[monitoring.alerts]]"
        )
    rules = list(DEFAULT_RULES) if use_defaults else []
    for index, entry in enumerate(declared):
        where = f"{path}: [[monitoring.alerts]] #{index + 1}"
        try:
            rules.append(AlertRule.from_table(entry, where=where))
        except ValidationError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith(where) else f"{where}: {text}") from None
    return _unique(rules)


def default_window(settings: Settings) -> str:
    """``[monitoring] window`` from ``loopml.toml``: the window spec of the scheduled
    passes (``loopml monitor run`` without ``--window``) and of what /metrics shows;
    ``"1h"`` when unset.

    Raises:
        ConfigError: not a window spec.
    """
    from loopml.monitoring._windows import DEFAULT_WINDOW, parse_window

    text = load_config_table(settings.project_dir, "monitoring").get("window", DEFAULT_WINDOW)
    try:
        return parse_window(str(text)).text
    except ValidationError as exc:
        raise ConfigError(f"{settings.project_dir / 'loopml.toml'}: [monitoring] {exc}") from exc


def default_webhook(settings: Settings) -> str | None:
    """``[monitoring] webhook`` from ``loopml.toml``: where alerts go unless a rule says.

    Raises:
        ConfigError: not an http(s) URL.
    """
    url = load_config_table(settings.project_dir, "monitoring").get("webhook")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{settings.project_dir / 'loopml.toml'}: [monitoring] webhook must be an "
            f"http:// or https:// URL; got {url!r}"
        )
    return url
