"""Monitoring reports: per window and model version, drift, performance with its label
coverage, and operations; stored as JSON, and flattened into :class:`MetricSample`s for
alert rules, Prometheus and the loop controller."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.monitoring import _drift_link
from loopml.monitoring._operations import LATENCY_QUANTILES

__all__ = ["MetricSample", "MonitorReport", "VersionWindow", "WindowReport"]


@dataclass(frozen=True)
class MetricSample:
    """One value of one metric series: ``name`` and ``labels`` as Prometheus has them."""

    name: str
    labels: dict[str, str]
    value: float


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


@dataclass(frozen=True)
class VersionWindow:
    """One model version in one window.

    ``latency_ms`` maps ``"0.5"``, ``"0.95"``, ``"0.99"`` to milliseconds;
    ``label_coverage`` is labelled rows / the model's own answers (fallbacks and rows
    logged without a prediction excluded);
    ``performance`` holds the metrics of the labelled rows (empty without labels);
    ``data_drift`` is the drift engine's ``DriftResult`` against the version's training
    data (None when the registry stored no profile); ``prediction_drift`` maps ``psi`` and
    ``jensen_shannon`` against the version's reference window (``prediction_reference``);
    ``invalid_inputs`` counts, per feature, values sent that could not be read as the
    feature's kind (text in a numeric feature): they count as missing in the drift.
    """

    model_version: str
    rows: int
    shadow_rows: int
    fallbacks: int
    errors: int
    latency_ms: dict[str, float]
    error_rate: float | None
    fallback_rate: float | None
    labelled: int
    label_coverage: float | None
    performance: dict[str, float]
    data_drift: Any = None
    prediction_drift: dict[str, float] | None = None
    prediction_reference: int | None = None
    invalid_inputs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "data_drift"}
        data["data_drift"] = None if self.data_drift is None else self.data_drift.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionWindow:
        drift = data.get("data_drift")
        values = {k: v for k, v in data.items() if k != "data_drift"}
        return cls(
            **values, data_drift=None if drift is None else _drift_link.result_from_dict(drift)
        )


@dataclass(frozen=True)
class WindowReport:
    """A window: ``[start_ms, end_ms)`` for time windows, the first and last prediction
    times for count windows; ``complete`` once no more rows can fall in it (a later time
    window has begun, or the count is reached). ``main_version`` answered the most
    non-shadow rows: the deployment-wide drift samples are its."""

    index: int
    start_ms: int
    end_ms: int
    rows: int
    complete: bool
    versions: list[VersionWindow]
    main_version: str | None

    def version(self, ref: str) -> VersionWindow | None:
        return next((v for v in self.versions if v.model_version == ref), None)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "versions"}
        data["versions"] = [v.to_dict() for v in self.versions]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowReport:
        values = {k: v for k, v in data.items() if k != "versions"}
        return cls(**values, versions=[VersionWindow.from_dict(v) for v in data["versions"]])


@dataclass(frozen=True)
class MonitorReport:
    """What :meth:`Monitor.report` found for a deployment: its windows, oldest first (the
    last is the current one), and what the pass read to bring them up to date."""

    id: str
    deployment: str
    window: str
    created_ms: int
    windows: list[WindowReport]
    rows_read: int  # prediction-log rows read by the pass that made this report
    segments_read: int
    labels_read: int
    rows_total: int  # rows the monitor has read for this deployment and window spec
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> WindowReport | None:
        return self.windows[-1] if self.windows else None

    def performance_window(self, ref: str) -> tuple[WindowReport, VersionWindow] | None:
        """The newest window where ``ref`` has labelled rows (labels come late)."""
        for window in reversed(self.windows):
            found = window.version(ref)
            if found is not None and found.labelled:
                return window, found
        return None

    def _drift_source(self, has: Callable[[VersionWindow], bool]) -> VersionWindow | None:
        """The main version of the newest window where ``has`` holds: a window that just
        began has too few rows to compare, so drift comes from the last one that had."""
        for window in reversed(self.windows):
            main = window.version(window.main_version) if window.main_version else None
            if main is not None and has(main):
                return main
        return None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "windows"}
        data["windows"] = [w.to_dict() for w in self.windows]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorReport:
        values = {k: v for k, v in data.items() if k != "windows"}
        return cls(**values, windows=[WindowReport.from_dict(w) for w in data["windows"]])

    def samples(self) -> list[MetricSample]:
        """The report as flat samples (every one labelled with ``deployment``).

        Data and prediction drift are the main version's in the newest window with
        enough rows to compare (``DriftThresholds.min_current_rows``, usually the
        current one); rows, latency and error/fallback rates are the current window's;
        performance, label coverage and labelled rows are each version's newest window
        with labels (the current window's coverage when a version has none yet).
        """
        out: list[MetricSample] = []
        base = {"deployment": self.deployment}

        def add(name: str, value: float | None, **labels: str) -> None:
            if value is not None and math.isfinite(value):
                out.append(MetricSample(name, {**base, **labels}, float(value)))

        current = self.current
        if current is None:
            return out
        _drift_samples(self._drift_source(_data_drift_evaluated), add, data=True)
        _drift_samples(self._drift_source(lambda v: bool(v.prediction_drift)), add, data=False)
        for version in current.versions:
            ref = version.model_version
            add("loopml_window_rows", version.rows, model_version=ref)
            for quantile in LATENCY_QUANTILES:
                add(
                    "loopml_latency_ms",
                    version.latency_ms.get(str(quantile)),
                    model_version=ref,
                    quantile=str(quantile),
                )
            add("loopml_error_rate", version.error_rate, model_version=ref)
            add("loopml_fallback_rate", version.fallback_rate, model_version=ref)
            for feature, count in sorted(version.invalid_inputs.items()):
                add("loopml_invalid_inputs", count, model_version=ref, feature=feature)
        refs = sorted({v.model_version for w in self.windows for v in w.versions})
        for ref in refs:
            found = self.performance_window(ref)
            if found is None:
                now = current.version(ref)
                if now is not None:
                    add("loopml_label_coverage", now.label_coverage, model_version=ref)
                    add("loopml_labelled_rows", 0, model_version=ref)
                continue
            _, labelled = found
            for metric, value in sorted(labelled.performance.items()):
                add("loopml_model_performance", value, model_version=ref, metric=metric)
            add("loopml_label_coverage", labelled.label_coverage, model_version=ref)
            add("loopml_labelled_rows", labelled.labelled, model_version=ref)
        return out


def _data_drift_evaluated(version: VersionWindow) -> bool:
    drift = version.data_drift
    return drift is not None and any(f.evaluated for f in drift.features.values())


def _drift_samples(version: VersionWindow | None, add: Any, *, data: bool) -> None:
    if version is None:
        return
    drift = version.data_drift
    if data and drift is not None:
        add("loopml_drift_share", drift.share_drifted)
        add("loopml_dataset_drifted", float(bool(drift.drifted)))
        for name, feature in drift.features.items():
            if not feature.evaluated:  # too few values of it in the window
                continue
            for statistic, value in sorted(feature.statistics.items()):
                add("loopml_feature_drift_score", value, feature=name, statistic=statistic)
            add("loopml_feature_drifted", float(bool(feature.drifted)), feature=name)
    if not data:
        for statistic, value in sorted((version.prediction_drift or {}).items()):
            add("loopml_prediction_drift_score", _finite(value), statistic=statistic)
