"""Traffic the controller judges: logged predictions joined with their feedback labels.

Everything is read through ``loopml.serving``'s public API (the prediction log and
feedback), and models are loaded through the registry (digest-checked).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core import Settings, ValidationError
from loopml.registry import ModelVersion
from loopml.serving import Feedback, PredictionLog

__all__ = ["Labelled", "Traffic", "ops_stats", "score"]


@dataclass(frozen=True)
class Labelled:
    """Labelled predictions: their inputs, true labels, who served them and when."""

    inputs: list[dict[str, Any]]
    labels: list[Any]
    versions: list[str]
    ts_ms: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def newest(self, n: int) -> Labelled:
        return Labelled(self.inputs[-n:], self.labels[-n:], self.versions[-n:], self.ts_ms[-n:])

    def served_by(self, version: str) -> Labelled:
        keep = [i for i, v in enumerate(self.versions) if v == version]
        return Labelled(
            [self.inputs[i] for i in keep],
            [self.labels[i] for i in keep],
            [self.versions[i] for i in keep],
            [self.ts_ms[i] for i in keep],
        )


class Traffic:
    """One tick's view of the prediction log and feedback (opened on first use)."""

    def __init__(self, settings: Settings, feedback: Feedback) -> None:
        self.settings = settings
        self.feedback = feedback
        self._log: PredictionLog | None = None

    @property
    def log(self) -> PredictionLog:
        if self._log is None:
            # never appended to: it only reads (and recovers dead processes' journals)
            self._log = PredictionLog(self.settings, durable=False)
        return self._log

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def watermark(self, deployment: str) -> int | None:
        """The newest logged prediction's timestamp (ms), None for an empty log."""
        newest = self.log.tail(deployment, n=1)
        return newest[0].ts_ms if newest else None

    def records(self, deployment: str, after_ms: int | None) -> pa.Table:
        """Answers (not shadows) logged after ``after_ms``, oldest first."""
        table = self.log.scan(deployment, None if after_ms is None else after_ms + 1)
        return table.filter(pc.invert(table["shadow"]))

    def label_count(self, deployment: str, since_ms: int) -> int:
        """Labels stored for ``deployment`` from ``since_ms`` (wall clock) on."""
        return len(self.feedback.labels(deployment, since_ms=since_ms))

    def labelled(self, deployment: str, records: pa.Table, labels_since_ms: int | None) -> Labelled:
        """``records`` that have a label (the latest one given), oldest first."""
        if records.num_rows == 0:
            return Labelled([], [], [], [])
        found = {
            label.prediction_id: label.label
            for label in self.feedback.labels(deployment, since_ms=labels_since_ms)
        }
        ids = records["prediction_id"].to_pylist()
        keep = [i for i, pid in enumerate(ids) if pid in found]
        subset = records.take(pa.array(keep, type=pa.int64()))
        return Labelled(
            inputs=[json.loads(text) for text in subset["inputs"].to_pylist()],
            labels=[found[pid] for pid in subset["prediction_id"].to_pylist()],
            versions=subset["model_version"].to_pylist(),
            ts_ms=subset["ts_ms"].to_pylist(),
        )


def ops_stats(records: pa.Table, version: str) -> dict[str, float]:
    """Rows, fallback (error) rate and latency quantiles of ``version``'s answers."""
    mine = records.filter(pc.equal(records["model_version"], version))
    rows = mine.num_rows
    if rows == 0:
        return {"rows": 0.0}
    fallbacks = int(pc.sum(mine["fallback"].cast(pa.int64())).as_py() or 0)
    latency = np.asarray(mine["latency_ms"].to_numpy(zero_copy_only=False), dtype=float)
    p50, p95, p99 = np.quantile(latency, [0.5, 0.95, 0.99])
    return {
        "rows": float(rows),
        "error_rate": fallbacks / rows,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
    }


def _frame(version: ModelVersion, inputs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    columns = version.signature.get("inputs") or []
    if not columns:
        raise ValidationError(f"{version.ref} records no input signature: cannot score it")
    names = [str(c["name"]) for c in columns]
    frame = pd.DataFrame([{n: row.get(n) for n in names} for row in inputs], columns=names)
    for column in columns:
        dtype = str(column.get("dtype", "")).lower()
        name = str(column["name"])
        if dtype.startswith(("int", "uint", "float")):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
            if dtype.startswith("float"):
                frame[name] = frame[name].astype("float64")
        elif dtype.startswith("bool"):
            frame[name] = frame[name].astype("boolean")
    return frame


def score(model: Any, version: ModelVersion, data: Labelled, metric: str) -> float:
    """``metric`` of ``model`` (``version``'s loaded object) on the labelled rows."""
    from loopml.training import classification_metrics, regression_metrics

    frame = _frame(version, data.inputs)
    y = np.asarray(data.labels, dtype=object)
    task = version.extra.get("task")
    if task == "regression":
        scores = regression_metrics(y.astype(float), model.predict(frame))
    else:
        classes = list(version.signature.get("outputs", {}).get("classes") or []) or None
        if classes is not None:
            # labels arrive as JSON: 1 for class 1, "yes" for class "yes"; match their type
            kinds = {type(c) for c in classes}
            if kinds <= {int} or kinds <= {float}:
                y = np.asarray([float(v) for v in data.labels]).astype(next(iter(kinds)))
        proba = model.predict_proba(frame) if hasattr(model, "predict_proba") else None
        scores = classification_metrics(y, model.predict(frame), proba, classes=classes)
    if metric not in scores:
        raise ValidationError(
            f"metric {metric!r} is not computed for {version.ref}; have {sorted(scores)}"
        )
    return float(scores[metric])
