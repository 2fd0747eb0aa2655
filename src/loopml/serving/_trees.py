"""GradientBoosting classifiers scored with numpy, answer for answer what scikit-learn gives.

On one row, three quarters of ``GradientBoostingClassifier.predict_proba`` is input checking
(run three times per call), not trees. :class:`CompiledBoosting` copies the fitted trees into
flat arrays once and walks all of them at once, level by level, with the comparisons and the
additions scikit-learn's tree walk makes, in the same order: the feature value as float32
against the float64 threshold, left when ``<=``; then ``raw += learning_rate * leaf value``
tree after tree, from the initial estimator's raw score. Probabilities come from the model's
own loss, labels from its own rule (``raw >= 0``).

:func:`compile_boosting` builds one only for a binary classifier with the log loss and a
constant initial score (its default prior, or ``init="zero"``), and only when its answers
equal scikit-learn's, bit for bit, on probe rows that put every split's threshold on both
sides; anything else keeps scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.serving._scoring import answers, plain

__all__ = ["CompiledBoosting", "compile_boosting"]

_GB = ("sklearn.ensemble._gb", "GradientBoostingClassifier")
_PROBE_ROWS = 512
_CONSTANT = ("prior", "most_frequent", "uniform", "constant")  # DummyClassifier strategies


class CompiledBoosting:
    """The trees of one binary GradientBoostingClassifier, flattened (see the module)."""

    def __init__(self, model: Any) -> None:
        trees = [estimator.tree_ for estimator in model.estimators_[:, 0]]
        sizes = [tree.node_count for tree in trees]
        offsets = np.cumsum([0, *sizes[:-1]])
        left, right, feature, threshold, value = [], [], [], [], []
        for tree, offset in zip(trees, offsets, strict=True):
            leaf = tree.children_left == -1
            index = np.arange(tree.node_count) + offset
            # a leaf points at itself, so further levels leave it where it is
            left.append(np.where(leaf, index, tree.children_left + offset))
            right.append(np.where(leaf, index, tree.children_right + offset))
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(tree.threshold)
            value.append(tree.value.reshape(tree.node_count))
        self._roots = offsets.astype(np.intp)
        self._left = np.concatenate(left).astype(np.intp)
        self._right = np.concatenate(right).astype(np.intp)
        self._feature = np.concatenate(feature).astype(np.intp)
        self._threshold = np.concatenate(threshold).astype(np.float64)
        self._value = np.concatenate(value).astype(np.float64)
        self._depth = max(tree.max_depth for tree in trees)
        self._scale = float(model.learning_rate)
        self._init = float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
        self._loss = model._loss
        self._classes = np.asarray(model.classes_)
        self._names = [str(plain(c)) for c in self._classes.tolist()]

    def raw(self, x32: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The raw scores of ``x32`` (finite float32 values), as ``_raw_predict`` gives them."""
        x = x32.astype(np.float64)
        nodes = np.broadcast_to(self._roots, (x.shape[0], self._roots.size))
        for _ in range(self._depth):
            values = np.take_along_axis(x, self._feature[nodes], axis=1)
            nodes = np.where(
                values <= self._threshold[nodes], self._left[nodes], self._right[nodes]
            )
        steps = self._scale * self._value[nodes]
        start = np.full((x.shape[0], 1), self._init)
        # cumsum adds one tree after the other, as scikit-learn does (a sum would pair them)
        return np.cumsum(np.concatenate([start, steps], axis=1), axis=1)[:, -1]

    def answers(self, x: np.ndarray[Any, Any]) -> list[dict[str, Any]] | None:
        """``{"prediction", "probabilities"}`` per row, as :func:`answers` gives them; None
        when a value is not finite as float32 (NaN, or too large): scikit-learn refuses
        those, and the caller asks it, for its error."""
        with np.errstate(over="ignore"):  # too large for float32 becomes inf: refused below
            x32 = np.asarray(x, dtype=np.float32)
        if not np.isfinite(x32).all():
            return None
        raw = self.raw(x32)
        proba = np.asarray(self._loss.predict_proba(raw)).tolist()
        labels = self._classes[(raw >= 0).astype(int)].tolist()
        return [
            {"prediction": plain(label), "probabilities": dict(zip(self._names, row, strict=True))}
            for label, row in zip(labels, proba, strict=True)
        ]


def _probes(model: Any, seed: int = 0) -> np.ndarray[Any, Any]:
    """Rows whose values sit on, just below and just above the thresholds each feature is
    split on (as float32, the precision the trees compare in), drawn at random."""
    rng = np.random.default_rng(seed)
    trees = [estimator.tree_ for estimator in model.estimators_[:, 0]]
    features = np.concatenate([tree.feature for tree in trees])
    thresholds = np.concatenate([tree.threshold for tree in trees])
    split = features >= 0
    features, at = features[split], thresholds[split].astype(np.float32)
    near = np.concatenate(
        [at, np.nextafter(at, np.float32(-np.inf)), np.nextafter(at, np.float32(np.inf))]
    )
    owner = np.concatenate([features] * 3)
    columns = [
        rng.choice(np.concatenate([[0.0], near[owner == f]]), _PROBE_ROWS)
        for f in range(model.n_features_in_)
    ]
    return np.column_stack(columns).astype(np.float64)


def compile_boosting(model: Any) -> CompiledBoosting | None:
    """A :class:`CompiledBoosting` of ``model`` (a float-matrix model, see ``matrix_copy``),
    or None when it is not one this covers or its answers differ from scikit-learn's."""
    if (type(model).__module__, type(model).__qualname__) != _GB:
        return None
    try:
        if (
            model.loss != "log_loss"
            or len(model.classes_) != 2
            or model.n_trees_per_iteration_ != 1
        ):
            return None
        init = model.init_
        constant = type(init).__name__ == "DummyClassifier" and init.strategy in _CONSTANT
        if not (init == "zero" or constant):  # a "stratified" start is random per row
            return None
        compiled = CompiledBoosting(model)
        probes = _probes(model)
        same = compiled.answers(probes) == answers(model, probes)
    except Exception:  # an attribute a later scikit-learn renamed, say: keep scikit-learn
        return None
    return compiled if same else None
