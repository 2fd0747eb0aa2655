"""Feature importance for model cards: permutation importance, and SHAP when installed.

Both are computed on the version's held-out rows (the test part of its split, or the whole
training dataset when it has no split), so they describe the model on data it did not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.core import LoopmlError
from loopml.registry._entities import ModelVersion

__all__ = ["FeatureImportance", "feature_importance"]

MAX_ROWS = 1000
SHAP_ROWS = 100
N_REPEATS = 5
RANDOM_STATE = 0


@dataclass(frozen=True)
class FeatureImportance:
    """One method's importances, strongest first: ``(feature, mean, std)`` per feature."""

    method: str  # "permutation" | "shap"
    detail: str
    values: list[tuple[str, float, float]]

    @property
    def strongest(self) -> str | None:
        return self.values[0][0] if self.values else None


def _ranked(names: list[str], means: Any, stds: Any) -> list[tuple[str, float, float]]:
    rows = [(n, float(m), float(s)) for n, m, s in zip(names, means, stds, strict=True)]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def _permutation(model: Any, x: Any, y: Any, task: str | None) -> FeatureImportance:
    from sklearn.inspection import permutation_importance

    scoring = "r2" if task == "regression" else "accuracy"
    result = permutation_importance(
        model, x, y, scoring=scoring, n_repeats=N_REPEATS, random_state=RANDOM_STATE
    )
    detail = (
        f"permutation importance: mean drop in {scoring} when one feature is shuffled "
        f"({N_REPEATS} repeats, random_state={RANDOM_STATE}, {len(x)} held-out rows)"
    )
    names = [str(c) for c in x.columns]
    return FeatureImportance(
        "permutation",
        detail,
        _ranked(names, result.importances_mean, result.importances_std),
    )


def _shap(model: Any, x: Any, task: str | None) -> FeatureImportance | str | None:
    """Mean |SHAP value| per feature; None when shap is not installed, text when it fails."""
    try:
        import shap
    except ImportError:
        return None
    sample = x.iloc[:SHAP_ROWS]
    proba = task != "regression" and hasattr(model, "predict_proba")
    predict = model.predict_proba if proba else model.predict
    try:
        explanation = shap.Explainer(predict, sample, seed=RANDOM_STATE)(sample)
        values = np.abs(np.asarray(explanation.values, dtype=float))
    except Exception as exc:  # shap supports many but not all models and dtypes
        return f"SHAP could not explain this model: {type(exc).__name__}: {exc}"
    per_feature = values.mean(axis=0)
    if per_feature.ndim > 1:  # one column per class: average over them
        per_feature = per_feature.mean(axis=-1)
    spread = values.std(axis=0)
    if spread.ndim > 1:
        spread = spread.mean(axis=-1)
    output = "predict_proba, averaged over classes" if proba else "predict"
    detail = f"SHAP: mean |SHAP value| of {output} on {len(sample)} held-out rows"
    return FeatureImportance(
        "shap", detail, _ranked(list(map(str, x.columns)), per_feature, spread)
    )


def feature_importance(
    registry: Any, version: ModelVersion
) -> tuple[list[FeatureImportance], list[str]]:
    """Importances by every available method, and notes on what was skipped and why."""
    from loopml.registry._gates import _held_out

    notes: list[str] = []
    try:
        x, y = _held_out(registry.settings, version)
    except LoopmlError as exc:
        return [], [f"feature importance not computed: {exc}"]
    if len(x) > MAX_ROWS:
        x = x.sample(n=MAX_ROWS, random_state=RANDOM_STATE)
        y = y.loc[x.index]
    model = registry.load(version.ref)
    task = version.extra.get("task")
    found = [_permutation(model, x, y, task)]
    shap_result = _shap(model, x, task)
    if isinstance(shap_result, FeatureImportance):
        found.append(shap_result)
    elif isinstance(shap_result, str):
        notes.append(shap_result)
    return found, notes
