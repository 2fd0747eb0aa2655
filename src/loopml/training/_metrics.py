"""Standard metrics for classification and regression, and the task-detection rule.

Every function returns plain ``{name: float}``. Without probabilities, ROC AUC and
log loss are left out of the result; a metric that is undefined for the data at
hand (ROC AUC when ``y_true`` holds one class, R² on one row) is NaN, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ValidationError

__all__ = [
    "CLASSIFICATION_METRICS",
    "MAX_CLASSES",
    "REGRESSION_METRICS",
    "classification_metrics",
    "detect_task",
    "regression_metrics",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
TASKS = ("classification", "regression")
# A numeric target with at most this many distinct whole-number values is a class label.
MAX_CLASSES = 20


def detect_task(y: pd.Series[Any] | Sequence[Any] | np.ndarray[Any, Any]) -> str:
    """``"classification"`` or ``"regression"`` for a target column.

    The rule: booleans, strings, categoricals and other non-numeric values are
    classification. A numeric target (integer or float) is classification when every
    value is a whole number and there are at most :data:`MAX_CLASSES` (20) distinct
    values; otherwise it is regression. Pass ``task=`` to :func:`~loopml.training.fit`
    to overrule it (a count target with 5 values that should be regressed, say).
    """
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    values = series.dropna()
    types = pd.api.types
    if types.is_bool_dtype(series.dtype) or not types.is_numeric_dtype(series.dtype):
        return "classification"
    if values.empty:
        return "regression"
    numbers = values.to_numpy(dtype="float64")
    whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
    if whole and values.nunique() <= MAX_CLASSES:
        return "classification"
    return "regression"


def check_task(task: str) -> str:
    """Return ``task`` if it is ``"auto"``, ``"classification"`` or ``"regression"``."""
    if task not in (*TASKS, "auto"):
        raise ValidationError(
            f"task must be 'auto', 'classification' or 'regression'; got {task!r}"
        )
    return task


def _sorted_labels(values: np.ndarray[Any, Any]) -> list[Any]:
    unique = pd.unique(pd.Series(values).dropna())
    try:
        return sorted(unique.tolist())
    except TypeError:  # mixed types: keep the order of first appearance
        return list(unique.tolist())


def _codes(values: np.ndarray[Any, Any], labels: list[Any]) -> np.ndarray[Any, Any]:
    """Positions of ``values`` in ``labels``; -1 for a value that is not a label."""
    index = pd.Index(labels)
    return np.asarray(index.get_indexer(pd.Series(values, dtype=object)), dtype=np.int64)


def _safe_ratio(top: np.ndarray[Any, Any], bottom: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = np.zeros_like(top, dtype="float64")
    np.divide(top, bottom, out=out, where=bottom > 0)
    return out


def _binary_auc(positive: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half); NaN on one class."""
    count_pos = int(positive.sum())
    count_neg = positive.shape[0] - count_pos
    if count_pos == 0 or count_neg == 0:
        return math.nan
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float(
        (ranks[positive].sum() - count_pos * (count_pos + 1) / 2) / (count_pos * count_neg)
    )


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray[Any, Any] | pd.Series[Any],
    y_pred: Sequence[Any] | np.ndarray[Any, Any] | pd.Series[Any],
    y_proba: np.ndarray[Any, Any] | None = None,
    *,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and log loss.

    Args:
        y_true: the true labels.
        y_pred: the predicted labels.
        y_proba: predicted probabilities, one column per class in the order of
            ``classes`` (a 1-D array is the positive class's probability, binary only).
            Without it ROC AUC and log loss are left out.
        classes: every class the model knows, in the order of ``y_proba``'s columns
            (an estimator's ``classes_``); by default the sorted labels of ``y_true``
            and ``y_pred``.

    Binary problems score the positive class, which is the larger label (``1`` of
    ``{0, 1}``, ``True`` of booleans, ``"yes"`` of ``{"no", "yes"}``); with more than
    two classes precision, recall and F1 are macro averages over ``classes`` and ROC
    AUC is one-vs-rest (macro). A ratio with a zero denominator is 0 (scikit-learn's
    ``zero_division=0``); ROC AUC is NaN when ``y_true`` lacks a class. The values
    equal scikit-learn's (a test checks it) at a fraction of the cost, which matters
    when every fold of every trial is scored.
    """
    truth = np.asarray(y_true)
    predicted = np.asarray(y_pred)
    if truth.shape[0] != predicted.shape[0]:
        raise ValidationError(
            f"y_true has {truth.shape[0]} rows but y_pred has {predicted.shape[0]}"
        )
    labels = (
        list(classes) if classes is not None else _sorted_labels(np.concatenate([truth, predicted]))
    )
    binary = len(labels) <= 2
    true_codes, pred_codes = _codes(truth, labels), _codes(predicted, labels)
    size = len(labels)
    hits = np.bincount(true_codes[true_codes == pred_codes], minlength=size)[:size]
    true_counts = np.bincount(true_codes[true_codes >= 0], minlength=size)[:size]
    pred_counts = np.bincount(pred_codes[pred_codes >= 0], minlength=size)[:size]
    precision = _safe_ratio(hits, pred_counts)
    recall = _safe_ratio(hits, true_counts)
    f1 = _safe_ratio(2 * hits, pred_counts + true_counts)
    result: dict[str, float] = {
        "accuracy": float(np.mean(truth == predicted)) if truth.shape[0] else math.nan
    }
    if binary:
        positive = labels.index(_sorted_labels(np.asarray(labels, dtype=object))[-1])
        result.update(
            precision=float(precision[positive]),
            recall=float(recall[positive]),
            f1=float(f1[positive]),
        )
    else:
        result.update(
            precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean())
        )
    if y_proba is None:
        return result
    proba = np.asarray(y_proba, dtype="float64")
    if proba.ndim == 1:
        if not binary:
            raise ValidationError(
                f"y_proba is 1-D (positive-class probabilities) but there are {len(labels)} "
                "classes; pass one column per class"
            )
        proba = np.column_stack([1.0 - proba, proba])
    if proba.shape != (truth.shape[0], len(labels)):
        raise ValidationError(
            f"y_proba has shape {proba.shape}; expected ({truth.shape[0]}, {len(labels)}): "
            "one row per sample, one column per class"
        )
    if binary:
        result["roc_auc"] = _binary_auc(true_codes == positive, proba[:, positive])
    else:  # one-vs-rest, macro: undefined (NaN) when a class is missing from y_true
        aucs = [_binary_auc(true_codes == k, proba[:, k]) for k in range(size)]
        result["roc_auc"] = float(np.mean(aucs))
    known = true_codes >= 0
    if not known.all():
        result["log_loss"] = math.nan  # a true label the probabilities have no column for
    else:
        eps = np.finfo(np.float64).eps
        picked = np.clip(proba[np.arange(truth.shape[0]), true_codes], eps, 1 - eps)
        result["log_loss"] = float(-np.mean(np.log(picked))) if picked.size else math.nan
    return result


def regression_metrics(
    y_true: Sequence[float] | np.ndarray[Any, Any] | pd.Series[Any],
    y_pred: Sequence[float] | np.ndarray[Any, Any] | pd.Series[Any],
) -> dict[str, float]:
    """MAE, RMSE, MAPE and R².

    Computed as scikit-learn does, with numpy only. MAPE is a fraction (0.05 is
    5 %); rows whose true value is 0 make it very large. R² is NaN on fewer than two
    rows, and for a constant ``y_true`` 1.0 when every prediction is exact, else 0.0.
    """
    truth = np.asarray(y_true, dtype="float64")
    predicted = np.asarray(y_pred, dtype="float64")
    if truth.shape[0] != predicted.shape[0]:
        raise ValidationError(
            f"y_true has {truth.shape[0]} rows but y_pred has {predicted.shape[0]}"
        )
    if truth.shape[0] == 0:
        return dict.fromkeys(REGRESSION_METRICS, math.nan)
    errors = truth - predicted
    residual = float(np.sum(errors**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if truth.shape[0] < 2:
        r2 = math.nan
    elif total == 0:
        r2 = 1.0 if residual == 0 else 0.0
    else:
        r2 = 1.0 - residual / total
    eps = np.finfo(np.float64).eps
    return {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": math.sqrt(float(np.mean(errors**2))),
        "mape": float(np.mean(np.abs(errors) / np.maximum(np.abs(truth), eps))),
        "r2": r2,
    }
