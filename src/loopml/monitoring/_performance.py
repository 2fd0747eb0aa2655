"""Performance from late labels: the labelled rows of a window, and their metrics per version.

A window keeps its labelled rows (prediction id, version, label, prediction, class
probabilities) as one Arrow blob, replaced when labels for its predictions arrive; a
prediction labelled again keeps the newest label. Metrics come from
:mod:`loopml.training`'s functions on those rows: accuracy, F1, ROC AUC and log loss
for classifiers (the last two when every labelled row has probabilities), MAE and RMSE
for regressors. Fallback answers are not the model's and are never labelled here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.monitoring._versions import VersionCache, VersionInfo

__all__ = [
    "CLASSIFICATION_METRICS",
    "LABELS_SCHEMA",
    "REGRESSION_METRICS",
    "merge_labels",
    "performance",
]

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse")

LABELS_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("model_version", pa.string()),
        ("y_true", pa.string()),  # canonical label text (a number's text for regression)
        ("y_pred", pa.string()),
        ("proba", pa.list_(pa.float64())),  # in the version's class order, or null
        ("label_ts", pa.int64()),
    ]
)


def merge_labels(existing: pa.Table | None, new: list[dict[str, Any]]) -> pa.Table:
    """``existing`` with ``new`` rows (dicts in :data:`LABELS_SCHEMA`) upserted by
    prediction id: a label replaces an older or equally old one, never a newer one."""
    rows: dict[str, dict[str, Any]] = {}
    if existing is not None:
        for row in existing.to_pylist():
            rows[row["prediction_id"]] = row
    for row in new:
        held = rows.get(row["prediction_id"])
        if held is None or row["label_ts"] >= held["label_ts"]:
            rows[row["prediction_id"]] = row
    ordered = sorted(rows.values(), key=lambda r: r["prediction_id"])
    return pa.Table.from_pylist(ordered, schema=LABELS_SCHEMA)


def _classification(info: VersionInfo, part: pa.Table) -> dict[str, float]:
    from loopml.training import classification_metrics

    truth = part["y_true"].to_pylist()
    predicted = [p if p is not None else "" for p in part["y_pred"].to_pylist()]
    probas = part["proba"].to_pylist()
    classes = list(info.classes) or None
    proba = None
    if classes and all(p is not None for p in probas):
        proba = np.asarray(probas, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(classes) or np.isnan(proba).any():
            proba = None
    if classes is None:
        labels = sorted(set(truth) | set(predicted))
        classes = labels
    metrics = classification_metrics(truth, predicted, proba, classes=classes)
    return {k: metrics[k] for k in CLASSIFICATION_METRICS if k in metrics}


def _regression(part: pa.Table) -> dict[str, float]:
    from loopml.training import regression_metrics

    def floats(column: str) -> np.ndarray[Any, Any]:
        values = []
        for text in part[column].to_pylist():
            try:
                values.append(float(text))
            except (TypeError, ValueError):
                values.append(math.nan)
        return np.asarray(values, dtype=np.float64)

    truth, predicted = floats("y_true"), floats("y_pred")
    keep = np.isfinite(truth) & np.isfinite(predicted)
    if not keep.any():
        return {}
    metrics = regression_metrics(truth[keep], predicted[keep])
    return {k: metrics[k] for k in REGRESSION_METRICS}


def performance(table: pa.Table, versions: VersionCache) -> dict[str, dict[str, Any]]:
    """``{model_version: {"labelled": n, "metrics": {name: value}}}`` of a window's labels.

    NaN metrics (ROC AUC when the labels hold one class) are left out.
    """
    result: dict[str, dict[str, Any]] = {}
    for ref in sorted(set(table["model_version"].to_pylist())):
        part = table.filter(pc.equal(table["model_version"], ref))
        info = versions.get(ref)
        regression = info.task == "regression"
        metrics = _regression(part) if regression else _classification(info, part)
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        result[ref] = {"labelled": part.num_rows, "metrics": finite}
    return result
