"""GradientBoosting classifiers compiled to flat arrays: scikit-learn's answers, bit for bit,
with numpy alone.

On one row, three quarters of ``GradientBoostingClassifier.predict_proba`` is input checking,
not trees, and loading the model imports scikit-learn (about half of a server's start).
:class:`CompiledBoosting` holds the fitted trees as flat arrays and walks all of them at
once, level by level, with the comparisons and additions scikit-learn's tree walk makes, in
the same order: the feature value as float32 against the float64 threshold, left when
``<=``; then ``raw += learning_rate * leaf value`` tree after tree from the initial raw
score. Probabilities are the log loss's (SciPy's ``expit``, as scikit-learn computes them),
labels follow ``predict`` (``raw >= 0``).

:func:`compile_boosting` builds one only for a binary classifier with the log loss and a
constant initial score (its default prior, or ``init="zero"``), and only when the compiled
form, read back from its bytes, gives answers equal to scikit-learn's, bit for bit, on probe
rows that put every split's threshold on both sides. The registry compiles at registration
(``extra["compiled"]``); a server then loads those bytes instead of the model.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from loopml.core import ValidationError

__all__ = [
    "FORMAT",
    "GRADIENT_BOOSTING",
    "CompiledBoosting",
    "compile_boosting",
    "compile_registered",
]

GRADIENT_BOOSTING = "sklearn.ensemble._gb.GradientBoostingClassifier"
FORMAT = 1
_ARRAYS = ("roots", "left", "right", "feature", "threshold", "value")
_CHECK = ("probes", "expected_proba")  # rows and scikit-learn's probabilities for them
_PROBE_ROWS = 512
log = logging.getLogger(__name__)
_CONSTANT = ("prior", "most_frequent", "uniform", "constant")  # DummyClassifier strategies


class CompiledBoosting:
    """The trees of one binary GradientBoostingClassifier, flattened (see the module).

    ``columns`` names the model's features in order: a row's values in that order form
    the matrix :meth:`scores` takes.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        *,
        depth: int,
        scale: float,
        init: float,
        classes: Sequence[Any],
        columns: Sequence[str],
        expected_labels: Sequence[Any] = (),
    ) -> None:
        self._arrays = {name: arrays[name] for name in (*_ARRAYS, *_CHECK) if name in arrays}
        self._expected_labels = list(expected_labels)
        self._roots, self._left, self._right = arrays["roots"], arrays["left"], arrays["right"]
        self._feature, self._threshold = arrays["feature"], arrays["threshold"]
        self._value = arrays["value"]
        self._depth, self._scale, self._init = depth, scale, init
        self.classes = list(classes)
        self.columns = list(columns)
        self._labels = np.asarray(self.classes)
        from scipy.special import expit  # scikit-learn's inverse link (here, not per call)

        self._expit = expit

    @classmethod
    def from_model(cls, model: Any, columns: Sequence[str]) -> CompiledBoosting:
        """Flatten ``model``'s trees (checked by :func:`compile_boosting`, not here)."""
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
        arrays = {
            "roots": offsets.astype(np.int64),
            "left": np.concatenate(left).astype(np.int64),
            "right": np.concatenate(right).astype(np.int64),
            "feature": np.concatenate(feature).astype(np.int64),
            "threshold": np.concatenate(threshold).astype(np.float64),
            "value": np.concatenate(value).astype(np.float64),
        }
        start = model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0]
        probes = _probes(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "X does not have valid feature names"
            arrays["expected_proba"] = np.asarray(model.predict_proba(probes))
            expected_labels = np.asarray(model.predict(probes)).tolist()
        arrays["probes"] = probes
        return cls(
            arrays,
            depth=max(tree.max_depth for tree in trees),
            scale=float(model.learning_rate),
            init=float(start),
            classes=np.asarray(model.classes_).tolist(),
            columns=columns,
            expected_labels=expected_labels,
        )

    def to_bytes(self) -> bytes:
        """An ``.npz`` of the arrays plus a JSON header (no pickle: safe to load)."""
        header = {
            "format": FORMAT,
            "depth": self._depth,
            "scale": self._scale,
            "init": self._init,
            "classes": self.classes,
            "columns": self.columns,
            "expected_labels": self._expected_labels,
        }
        out = io.BytesIO()
        arrays = {"header": np.frombuffer(orjson.dumps(header), np.uint8), **self._arrays}
        np.savez(out, allow_pickle=False, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CompiledBoosting:
        """Read a compiled form back and check it here: it must give, on this machine, the
        answers scikit-learn gave for its probe rows when it was compiled (ValidationError
        otherwise, or when the bytes are not a compiled form this loopml reads)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as found:
                header = orjson.loads(found["header"].tobytes())
                arrays = {name: found[name] for name in (*_ARRAYS, *_CHECK)}
            if header["format"] != FORMAT:
                raise ValidationError(
                    f"compiled model format {header['format']!r}; this loopml reads {FORMAT}"
                )
            compiled = cls(
                arrays,
                depth=int(header["depth"]),
                scale=float(header["scale"]),
                init=float(header["init"]),
                classes=header["classes"],
                columns=header["columns"],
                expected_labels=header["expected_labels"],
            )
        except ValidationError:
            raise
        except Exception as exc:  # a truncated file, a missing key, a wrong type
            raise ValidationError(f"not a compiled GradientBoosting model: {exc!r}") from exc
        compiled._check()
        return compiled

    def _check(self) -> None:
        """Raise ValidationError unless the probe rows get exactly the stored answers: the
        same labels, as JSON (so 1, 1.0 and True differ), and the same floats."""
        labels, proba = self.scores(self._arrays["probes"])
        expected = self._arrays["expected_proba"]
        same = orjson.dumps(labels) == orjson.dumps(self._expected_labels)
        if not (same and proba.dtype == expected.dtype and np.array_equal(proba, expected)):
            raise ValidationError(
                "the compiled GradientBoosting model does not give scikit-learn's answers for "
                "its probe rows on this machine"
            )

    def fastest_ms(self, rows: int, tries: int = 5) -> float:
        """The fastest of ``tries`` timings of :meth:`scores` on ``rows`` probe rows, in ms
        (after one untimed call): what scoring such a request costs this process."""
        x = self._arrays["probes"][:rows]
        self.scores(x)
        best = float("inf")
        for _ in range(tries):
            start = time.perf_counter()
            self.scores(x)
            best = min(best, time.perf_counter() - start)
        return best * 1000

    def raw(self, x32: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The raw scores of ``x32`` (finite float32 values), as ``_raw_predict`` gives them."""
        x = x32.astype(np.float64)
        nodes = np.broadcast_to(self._roots.astype(np.intp), (x.shape[0], self._roots.size))
        for _ in range(self._depth):
            values = np.take_along_axis(x, self._feature[nodes], axis=1)
            nodes = np.where(
                values <= self._threshold[nodes], self._left[nodes], self._right[nodes]
            )
        steps = self._scale * self._value[nodes]
        start = np.full((x.shape[0], 1), self._init)
        # cumsum adds one tree after the other, as scikit-learn does (a sum would pair them)
        return np.cumsum(np.concatenate([start, steps], axis=1), axis=1)[:, -1]

    def scores(self, x: np.ndarray[Any, Any]) -> tuple[list[Any], np.ndarray[Any, Any]]:
        """``predict``'s labels and ``predict_proba``'s matrix for the rows of ``x``.

        A value that is not finite as float32 (NaN for a missing value, or too large) is
        refused with a ValueError that names its column, as scikit-learn refuses it.
        """
        with np.errstate(over="ignore"):  # too large for float32 becomes inf: refused below
            x32 = np.asarray(x, dtype=np.float32)
        finite = np.isfinite(x32)
        if not finite.all():
            row, column = (int(i) for i in np.argwhere(~finite)[0])
            value = float(np.asarray(x)[row, column])
            what = "missing (null or NaN)" if np.isnan(value) else f"{value!r}"
            raise ValueError(
                f"input {self.columns[column]!r} is {what}: GradientBoostingClassifier needs "
                "a finite value that fits in float32"
            )
        raw = self.raw(x32)
        proba = np.empty((raw.shape[0], 2), dtype=raw.dtype)
        proba[:, 1] = self._expit(raw)
        proba[:, 0] = 1 - proba[:, 1]
        labels = self._labels[(raw >= 0).astype(int)].tolist()
        return labels, proba


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


def _covered(model: Any, columns: Sequence[str]) -> bool:
    """Whether ``model`` is a binary log-loss GradientBoostingClassifier with a constant
    start, fitted on exactly ``columns`` in that order."""
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind != GRADIENT_BOOSTING or model.n_features_in_ != len(columns):
        return False
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and [str(name) for name in fitted] != list(columns):
        return False
    if model.loss != "log_loss" or len(model.classes_) != 2 or model.n_trees_per_iteration_ != 1:
        return False
    if type(model._loss).__name__ != "HalfBinomialLoss":
        return False
    init = model.init_
    constant = type(init).__name__ == "DummyClassifier" and init.strategy in _CONSTANT
    return bool(init == "zero" or constant)  # a "stratified" start is random per row


def compile_boosting(model: Any, columns: Sequence[str]) -> CompiledBoosting | None:
    """A :class:`CompiledBoosting` of ``model`` (features ``columns``, in order), or None
    when it is not one this covers or its answers differ from scikit-learn's."""
    try:
        if not _covered(model, columns):
            return None
        # read back from its bytes, which checks it against scikit-learn's own answers
        return CompiledBoosting.from_bytes(CompiledBoosting.from_model(model, columns).to_bytes())
    except Exception:  # answers that differ, or an attribute a later scikit-learn renamed
        return None


def compile_registered(source: Mapping[str, Any], artifacts: Any) -> dict[str, Any] | None:
    """The ``extra["compiled"]`` record for a version being registered from ``source``
    (see ``describe_run``), its bytes stored in ``artifacts``; None when it is not a
    GradientBoosting classifier on float inputs, or does not compile."""
    extra = source.get("extra") or {}
    if source.get("flavor") != "sklearn" or extra.get("estimator") != GRADIENT_BOOSTING:
        return None
    inputs = (source.get("signature") or {}).get("inputs") or []
    if not inputs or any(not str(c.get("dtype", "")).lower().startswith("float") for c in inputs):
        return None  # request values reach the model as floats only for float inputs
    from loopml.registry._flavors import load_flavor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a version mismatch is the loader's to report
            model = load_flavor("sklearn", artifacts.get_bytes(source["artifact"]))
    except Exception as exc:  # a class this process cannot import, say: served as it is
        log.info("not compiling %s: %s: %s", source["artifact"], type(exc).__name__, exc)
        return None
    compiled = compile_boosting(model, [str(c["name"]) for c in inputs])
    if compiled is None:
        return None
    digest = artifacts.put_bytes(compiled.to_bytes()).digest
    return {"kind": "gradient_boosting", "format": FORMAT, "digest": digest}
