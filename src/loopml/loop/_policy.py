"""Loop policies: what makes the controller retrain a deployment, and how a candidate
is judged, rolled out and promoted. Frozen dataclasses, checked on construction.

Every bad value is a ``ConfigError`` naming the key (``loop.churn-api.rollout.steps[1].
weight``) and what was expected, whether the policy came from ``loopml.toml`` or Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from loopml.core import ConfigError
from loopml.loop._policy_values import (
    LOWER_IS_BETTER,
    METRICS,
    PIPELINE_REF,
    check_count,
    check_metric,
    check_number,
    fail,
    higher_is_better,
)

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "CanaryStep",
    "Evaluation",
    "Guardrails",
    "LoopPolicy",
    "Rollout",
    "Triggers",
    "higher_is_better",
]

# Metrics a policy may judge on (the names loopml.training computes) and their direction.


@dataclass(frozen=True)
class Triggers:
    """When to retrain; each is off when None. Any one firing is enough.

    - ``drift_share``: ``loopml_drift_share`` (share of drifted features) at least this.
    - ``performance_drop``: the served version's ``loopml_model_performance`` on
      ``performance_metric`` is worse than its own validation score by more than this,
      with ``loopml_label_coverage`` at least ``min_label_coverage``.
    - ``new_labels``: at least this many labels arrived since the last retrain.
    - ``schedule``: a cron expression (UTC, five fields or ``@daily``...), in the
      controller's clock.

    ``window`` is the monitoring window (``"1h"``, ``"1d"``, ``"10000rows"``) whose newest
    report the drift and performance triggers read when the controller asks the monitor.
    """

    drift_share: float | None = None
    performance_drop: float | None = None
    performance_metric: str | None = None
    min_label_coverage: float = 0.5
    new_labels: int | None = None
    schedule: str | None = None
    window: str = "1h"
    where: str = field(default="triggers", compare=False, repr=False)

    def __post_init__(self) -> None:
        w = self.where
        if self.drift_share is not None:
            check_number(f"{w}.drift_share", self.drift_share, low=0, high=1, strict_low=True)
        if self.performance_drop is not None:
            check_number(f"{w}.performance_drop", self.performance_drop, low=0)
        if self.performance_metric is not None:
            check_metric(f"{w}.performance_metric", self.performance_metric)
        check_number(f"{w}.min_label_coverage", self.min_label_coverage, low=0, high=1)
        if self.new_labels is not None:
            check_count(f"{w}.new_labels", self.new_labels)
        from loopml.monitoring import parse_window

        if not isinstance(self.window, str):
            raise fail(f"{w}.window", "a window spec like '1h' or '10000rows'", self.window)
        try:
            parse_window(self.window)
        except ValueError as exc:
            raise ConfigError(f"{w}.window: {exc}") from None
        if self.schedule is not None:
            from loopml.pipelines import parse_cron

            try:
                parse_cron(self.schedule)
            except ValueError as exc:
                raise ConfigError(f"{w}.schedule: {exc}") from None

    @property
    def any(self) -> bool:
        """Whether any trigger is on."""
        return any(
            v is not None
            for v in (self.drift_share, self.performance_drop, self.new_labels, self.schedule)
        )


@dataclass(frozen=True)
class Evaluation:
    """How a candidate is judged against the champion before any canary.

    Both score the newest ``window_rows`` labelled predictions logged after the
    candidate's training data cut-off; the candidate must beat the champion on
    ``metric`` by at least ``min_gain``. Fewer than ``min_rows`` such rows: wait, for at
    most ``max_wait_s`` (controller clock), then the candidate is rejected.
    """

    metric: str = "roc_auc"
    min_gain: float = 0.0
    window_rows: int = 5000
    min_rows: int = 200
    max_wait_s: float = 7 * 86400.0
    where: str = field(default="evaluation", compare=False, repr=False)

    def __post_init__(self) -> None:
        w = self.where
        check_metric(f"{w}.metric", self.metric)
        check_number(f"{w}.min_gain", self.min_gain)
        check_count(f"{w}.window_rows", self.window_rows)
        check_count(f"{w}.min_rows", self.min_rows)
        if self.min_rows > self.window_rows:
            raise fail(f"{w}.min_rows", f"at most window_rows ({self.window_rows})", self.min_rows)
        check_number(f"{w}.max_wait_s", self.max_wait_s, low=0, strict_low=True)


@dataclass(frozen=True)
class CanaryStep:
    """One canary step: the candidate's traffic share, held until the candidate has
    served ``predictions`` records or ``seconds`` passed (controller clock), whichever
    comes first."""

    weight: float
    predictions: int | None = None
    seconds: float | None = None
    where: str = field(default="rollout.steps[0]", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_number(f"{self.where}.weight", self.weight, low=0, high=1, strict_low=True)
        if self.predictions is None and self.seconds is None:
            raise ConfigError(f"{self.where} needs predictions or seconds (or both)")
        if self.predictions is not None:
            check_count(f"{self.where}.predictions", self.predictions)
        if self.seconds is not None:
            check_number(f"{self.where}.seconds", self.seconds, low=0, strict_low=True)


def _default_steps() -> tuple[CanaryStep, ...]:
    return (
        CanaryStep(0.1, predictions=500, seconds=3600, where="rollout.steps[0]"),
        CanaryStep(0.5, predictions=2000, seconds=3600, where="rollout.steps[1]"),
    )


@dataclass(frozen=True)
class Rollout:
    """Canary steps and what the canary must show at each, compared with the champion
    serving beside it (the same time window).

    - ``max_error_rate``: the canary's share of failed calls (answered by a fallback).
    - ``max_latency_ratio``: canary p95 latency at most this times the champion's;
      ``max_latency_p95_ms`` an absolute bound (None: off).
    - ``max_quality_drop``: once both have ``min_labelled`` labelled rows, the canary's
      ``metric`` may trail the champion's by at most this.
    - ``min_rows``: canary predictions before a step may end or be judged.
    - ``step_timeout_s``: a step that never gathers ``min_rows`` is rolled back.
    - ``approval_timeout_s``: how long a finished canary waits for a required approval.
    - ``sticky_key``: a request field whose value pins each caller to the champion or the
      canary (the canary spec's ``sticky_key``); None: each record is drawn at random.
    """

    steps: tuple[CanaryStep, ...] = field(default_factory=_default_steps)
    max_error_rate: float = 0.02
    max_latency_ratio: float | None = 2.0
    max_latency_p95_ms: float | None = None
    max_quality_drop: float = 0.02
    min_labelled: int = 100
    min_rows: int = 20
    step_timeout_s: float = 86400.0
    approval_timeout_s: float = 86400.0
    sticky_key: str | None = None
    where: str = field(default="rollout", compare=False, repr=False)

    def __post_init__(self) -> None:
        w = self.where
        if not isinstance(self.steps, tuple) or not self.steps:
            raise fail(f"{w}.steps", "a non-empty list of canary steps", self.steps)
        for step in self.steps:
            if not isinstance(step, CanaryStep):
                raise fail(f"{w}.steps", "CanaryStep entries", step)
        for i, (before, step) in enumerate(zip(self.steps, self.steps[1:], strict=False)):
            if step.weight < before.weight:  # a canary only grows until promotion
                raise fail(
                    f"{w}.steps[{i + 1}].weight",
                    f"at least the step before's {before.weight:g} (weights never decrease)",
                    step.weight,
                )
        check_number(f"{w}.max_error_rate", self.max_error_rate, low=0, high=1)
        if self.max_latency_ratio is not None:
            check_number(f"{w}.max_latency_ratio", self.max_latency_ratio, low=0, strict_low=True)
        if self.max_latency_p95_ms is not None:
            check_number(f"{w}.max_latency_p95_ms", self.max_latency_p95_ms, low=0, strict_low=True)
        check_number(f"{w}.max_quality_drop", self.max_quality_drop, low=0)
        check_count(f"{w}.min_labelled", self.min_labelled)
        check_count(f"{w}.min_rows", self.min_rows)
        check_number(f"{w}.step_timeout_s", self.step_timeout_s, low=0, strict_low=True)
        check_number(f"{w}.approval_timeout_s", self.approval_timeout_s, low=0, strict_low=True)
        if self.sticky_key is not None and not (
            isinstance(self.sticky_key, str) and self.sticky_key.strip()
        ):
            raise fail(f"{w}.sticky_key", "a request field name", self.sticky_key)


@dataclass(frozen=True)
class Guardrails:
    """Limits on retraining: ``cooldown_s`` between retrains, ``max_retrains_per_day``
    (any 24 hours of the controller clock), and ``frozen`` (no action at all)."""

    cooldown_s: float = 3600.0
    max_retrains_per_day: int = 4
    frozen: bool = False
    where: str = field(default="guardrails", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_number(f"{self.where}.cooldown_s", self.cooldown_s, low=0)
        check_count(f"{self.where}.max_retrains_per_day", self.max_retrains_per_day)
        if not isinstance(self.frozen, bool):
            raise fail(f"{self.where}.frozen", "true or false", self.frozen)


@dataclass(frozen=True)
class LoopPolicy:
    """The loop of one deployment: retrain ``model`` with ``pipeline`` (a reference,
    ``module:name`` or ``file.py:name``; a relative file is taken from the project
    folder) when a trigger fires, judge, roll out, promote or roll back.

    ``cutoff_param``, when set, names a pipeline parameter that receives the prediction
    log's newest timestamp (ms) at retrain time: the candidate trains on data up to it
    and is judged on what came after. Without it the cut-off is the log's newest
    timestamp once training ends.
    """

    deployment: str
    model: str
    pipeline: str
    pipeline_params: Mapping[str, Any] = field(default_factory=dict)
    triggers: Triggers = field(default_factory=Triggers)
    evaluation: Evaluation = field(default_factory=Evaluation)
    rollout: Rollout = field(default_factory=Rollout)
    guardrails: Guardrails = field(default_factory=Guardrails)
    cutoff_param: str | None = None
    where: str = field(default="loop", compare=False, repr=False)

    def __post_init__(self) -> None:
        from loopml.registry import parse_model_ref

        w = self.where
        for key in ("deployment", "model", "pipeline"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise fail(f"{w}.{key}", "a non-empty string", value)
        try:
            _, version = parse_model_ref(self.model)
        except ValueError as exc:
            raise ConfigError(f"{w}.model: {exc}") from None
        if version is not None:
            raise fail(f"{w}.model", "a model name without @version", self.model)
        if not isinstance(self.pipeline_params, Mapping):
            raise fail(f"{w}.pipeline_params", "a table of parameters", self.pipeline_params)
        # frozen all the way down: a policy shared between threads cannot change
        object.__setattr__(self, "pipeline_params", MappingProxyType(dict(self.pipeline_params)))
        if self.cutoff_param is not None and not str(self.cutoff_param).isidentifier():
            raise fail(f"{w}.cutoff_param", "a parameter name", self.cutoff_param)
        for key, kind in (
            ("triggers", Triggers),
            ("evaluation", Evaluation),
            ("rollout", Rollout),
            ("guardrails", Guardrails),
        ):
            if not isinstance(getattr(self, key), kind):
                raise fail(f"{w}.{key}", f"a {kind.__name__}", getattr(self, key))
        if not PIPELINE_REF.match(self.pipeline.strip()):
            raise fail(
                f"{w}.pipeline", "a reference like module:name or file.py:name", self.pipeline
            )
        if not self.triggers.any:
            raise ConfigError(
                f"{w}.triggers needs at least one of drift_share, performance_drop, "
                "new_labels, schedule (a policy without one never retrains)"
            )

    def __reduce__(self) -> tuple[Any, ...]:
        # a mappingproxy does not pickle; policies travel to worker processes
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["pipeline_params"] = dict(self.pipeline_params)
        return (_policy_from_fields, (values,))

    @property
    def performance_metric(self) -> str:
        """The metric the performance trigger watches (the evaluation's by default)."""
        return self.triggers.performance_metric or self.evaluation.metric


def _policy_from_fields(values: dict[str, Any]) -> LoopPolicy:
    return LoopPolicy(**values)
