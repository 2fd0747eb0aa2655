"""Triggers: whether a deployment needs a new model, read from monitoring samples.

The controller reads flat samples (``name``, ``labels``, ``value``: the form
``loopml.monitoring`` reports and Prometheus scrapes) through a :class:`SampleSource`,
so the trigger logic is plain functions of sample lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopml.loop._policy import LoopPolicy, higher_is_better

__all__ = [
    "Fired",
    "Sample",
    "SampleSource",
    "baseline_metric",
    "check_triggers",
    "drift_summary",
    "sample_value",
    "samples_json",
]


class Sample(Protocol):
    """One measurement: ``loopml.monitoring.MetricSample`` has this shape."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


class SampleSource(Protocol):
    """Where the controller reads a deployment's latest monitoring samples."""

    def samples(self, deployment: str) -> Sequence[Sample]: ...


@dataclass(frozen=True)
class Fired:
    """A trigger that fired, why, and the value against its threshold."""

    trigger: str
    reason: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "reason": self.reason,
            "value": self.value,
            "threshold": self.threshold,
        }


def sample_value(samples: Sequence[Sample], name: str, **labels: str) -> float | None:
    """The value of the first sample called ``name`` whose labels include ``labels``."""
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            value = float(sample.value)
            return None if value != value else value  # NaN: not measured
    return None


def samples_json(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Samples as JSON-ready dicts (the evidence stored with a decision)."""
    out = []
    for s in samples:
        value = float(s.value)
        out.append(
            {"name": s.name, "labels": dict(s.labels), "value": None if value != value else value}
        )
    return out


def drift_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """The drift a report shows: share of drifted features, and which ones."""
    drifted = sorted(
        s.labels.get("feature", "?")
        for s in samples
        if s.name == "loopml_feature_drifted" and float(s.value) >= 1
    )
    return {
        "drift_share": sample_value(samples, "loopml_drift_share"),
        "dataset_drifted": sample_value(samples, "loopml_dataset_drifted"),
        "drifted_features": drifted,
    }


def baseline_metric(metrics: Mapping[str, float], metric: str) -> tuple[str, float] | None:
    """The served version's own score on ``metric`` at training time: validation, else
    test, else the cross-validation mean."""
    for part in ("validation", "test", "cv_mean"):
        value = metrics.get(f"{part}.{metric}")
        if value is not None and value == value:
            return f"{part}.{metric}", float(value)
    return None


def _performance(
    policy: LoopPolicy, samples: Sequence[Sample], served: str, metrics: Mapping[str, float]
) -> Fired | None:
    drop = policy.triggers.performance_drop
    if drop is None:
        return None
    metric = policy.performance_metric
    now = sample_value(samples, "loopml_model_performance", model_version=served, metric=metric)
    coverage = sample_value(samples, "loopml_label_coverage", model_version=served)
    baseline = baseline_metric(metrics, metric)
    if now is None or baseline is None or coverage is None:
        return None
    if coverage < policy.triggers.min_label_coverage:
        return None
    source, base = baseline
    worse_by = base - now if higher_is_better(metric) else now - base
    if worse_by <= drop:
        return None
    return Fired(
        "performance",
        f"{metric} of {served} is {now:.4g}, {worse_by:.4g} worse than its {source} "
        f"{base:.4g} (allowed {drop:g}; label coverage {coverage:.0%})",
        value=worse_by,
        threshold=drop,
    )


def check_triggers(
    policy: LoopPolicy,
    samples: Sequence[Sample],
    *,
    served: str | None,
    served_metrics: Mapping[str, float],
    new_labels: int | None,
    schedule_slot: dt.datetime | None,
) -> list[Fired]:
    """Every trigger of ``policy`` that fires now.

    Args:
        samples: the deployment's latest monitoring samples.
        served: the version the deployment serves (``churn@3``), for performance.
        served_metrics: that version's recorded metrics (its validation baseline).
        new_labels: labels received since the last retrain (None: not counted).
        schedule_slot: a cron slot that came due since the last look (None: none).
    """
    triggers = policy.triggers
    fired: list[Fired] = []
    share = sample_value(samples, "loopml_drift_share")
    if triggers.drift_share is not None and share is not None and share >= triggers.drift_share:
        features = drift_summary(samples)["drifted_features"]
        named = (
            f" ({', '.join(features[:5])}{', ...' if len(features) > 5 else ''})"
            if features
            else ""
        )
        fired.append(
            Fired(
                "drift",
                f"{share:.0%} of features drifted{named}, threshold {triggers.drift_share:.0%}",
                value=share,
                threshold=triggers.drift_share,
            )
        )
    if served is not None:
        found = _performance(policy, samples, served, served_metrics)
        if found is not None:
            fired.append(found)
    if (
        triggers.new_labels is not None
        and new_labels is not None
        and new_labels >= triggers.new_labels
    ):
        fired.append(
            Fired(
                "new_labels",
                f"{new_labels} new labels since the last retrain (threshold {triggers.new_labels})",
                value=float(new_labels),
                threshold=float(triggers.new_labels),
            )
        )
    if schedule_slot is not None:
        fired.append(
            Fired(
                "schedule",
                f"schedule {triggers.schedule!r} came due at {schedule_slot:%Y-%m-%d %H:%M} UTC",
            )
        )
    return fired
