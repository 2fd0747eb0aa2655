"""Scoring helpers for the app's hot path: numeric records as a float matrix, a model's
answers, and the matrix-taking copy of a model (see ``LoadedModel.matrix_model``)."""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Any, Literal

import numpy as np

__all__ = ["answer_dicts", "answers", "matrix_copy", "numeric_matrix", "plain", "python_type"]


def plain(value: Any) -> Any:
    """A JSON value from a numpy scalar (or the value itself)."""
    return value.item() if isinstance(value, np.generic) else value


def python_type(dtype: str) -> type:
    """The request field type for a pandas dtype name of the signature."""
    name = str(dtype).lower()
    if name.startswith("bool"):
        return bool
    if name.startswith(("int", "uint")):
        return int
    if name.startswith("float"):
        return float
    return str


def numeric_matrix(
    rows: list[dict[str, Any]],
    columns: list[str],
    dtype: Any = np.float64,
    order: Literal["C", "F"] = "C",
) -> np.ndarray[Any, Any]:
    """The rows as a ``[rows, columns]`` float matrix; a missing or null value is NaN.

    ``order="F"`` lays it out column by column, as a DataFrame's values reach a model.
    """
    return np.array([[row.get(c) for c in columns] for row in rows], dtype=dtype, order=order)


# Classifiers whose ``predict`` is, by its own code, ``classes_[argmax(predict_proba)]``
# (single output): for these exact types one call gives both answers.
_PREDICT_IS_ARGMAX = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
}
# Classifiers whose ``predict`` takes the class of the largest raw score (binary: the
# score's sign) and whose ``predict_proba`` is an increasing map of those scores (sigmoid,
# softmax): the largest probability names the predicted class, except where rounding made
# two probabilities equal, or a score overflowed and the probabilities are NaN. For those
# rows (rare) the answer is ``predict``'s on the whole input: a linear model's scores depend
# in their last bits on the batch they are computed in, which decides a tie.
_PREDICT_IS_ARGMAX_BUT_TIES = {
    ("sklearn.ensemble._gb", "GradientBoostingClassifier"),
    (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
        "HistGradientBoostingClassifier",
    ),
    ("sklearn.linear_model._logistic", "LogisticRegression"),
}


def _labels_and_probabilities(model: Any, x: Any, kind: tuple[str, str]) -> tuple[Any, Any]:
    """``predict`` and ``predict_proba`` of ``x`` in one model call (see the sets above)."""
    matrix = np.asarray(model.predict_proba(x))
    labels = np.asarray(model.classes_).take(np.argmax(matrix, axis=1), axis=0)
    if kind in _PREDICT_IS_ARGMAX_BUT_TIES:
        top = matrix.max(axis=1, keepdims=True)
        unclear = np.flatnonzero((matrix == top).sum(axis=1) != 1)  # ties; NaN rows have none
        if unclear.size:
            labels = labels.copy()
            labels[unclear] = np.asarray(model.predict(x))[unclear]
    return labels, matrix


def answers(model: Any, x: Any) -> list[dict[str, Any]]:
    """``{"prediction", "probabilities"?}`` per row of ``x`` from a scikit-learn-like model."""
    kind = (type(model).__module__, type(model).__qualname__)
    classes = getattr(model, "classes_", None)
    one_call = kind in _PREDICT_IS_ARGMAX or kind in _PREDICT_IS_ARGMAX_BUT_TIES
    if one_call and getattr(model, "n_outputs_", 1) == 1 and np.asarray(classes).ndim == 1:
        predicted, matrix = _labels_and_probabilities(model, x, kind)
        proba: list[Any] | None = matrix.tolist()
    else:
        predicted = np.asarray(model.predict(x))
        proba = None
        if classes is not None and hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(x)).tolist()
    return answer_dicts(predicted.tolist(), proba, classes)


def answer_dicts(
    labels: list[Any], proba: list[list[float]] | None, classes: Any
) -> list[dict[str, Any]]:
    """``{"prediction", "probabilities"?}`` per label; probabilities keyed by class name."""
    out: list[dict[str, Any]] = [{"prediction": plain(v)} for v in labels]
    if proba is not None and classes is not None:
        names = [str(plain(c)) for c in np.asarray(classes).tolist()]
        for item, row in zip(out, proba, strict=True):
            item["probabilities"] = dict(zip(names, row, strict=True))
    return out


def matrix_copy(model: Any, inputs: tuple[dict[str, Any], ...]) -> Any:
    """A shallow copy of ``model`` that answers a float matrix as it answers a DataFrame
    of the same rows, or None (some input is not numeric, the model needs column names,
    it warns, or a probe row answers differently).

    The copy forgets ``feature_names_in_`` (the trees, coefficients, ... stay shared), so
    scikit-learn neither checks names nor warns that the matrix has none. It is to be given
    the matrix column by column (``numeric_matrix(..., order="F")``), as a DataFrame's values
    reach scikit-learn: a linear model's products summed row by row differ in their last
    bits, and the probe would then (rightly) refuse the copy.
    """
    if not all(python_type(c.get("dtype", "")) in (float, int) for c in inputs):
        return None
    names = [str(c["name"]) for c in inputs]
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and [str(n) for n in np.asarray(fitted).tolist()] != names:
        return None
    twin = copy.copy(model)
    with contextlib.suppress(AttributeError):
        del twin.feature_names_in_
    import pandas as pd  # here only: a server whose models are compiled never needs it

    dtypes = {str(c["name"]): python_type(c.get("dtype", "")) for c in inputs}
    frame = pd.DataFrame(_probe_values(len(names)), columns=names).astype(
        {n: "int64" if dtypes[n] is int else "float64" for n in names}
    )
    probes = frame.to_dict("records")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            matrix = numeric_matrix(probes, names, order="F")
            same = answers(twin, matrix) == answers(model, frame)
    except Exception:
        return None
    return twin if same and not seen else None


def _probe_values(columns: int) -> np.ndarray[Any, Any]:
    """Probe rows: all zeros, all ones, and a few drawn at random (a fixed seed); an int
    column takes them truncated."""
    drawn = np.random.default_rng(0).normal(scale=3.0, size=(6, columns))
    return np.vstack([np.zeros(columns), np.ones(columns), drawn])
