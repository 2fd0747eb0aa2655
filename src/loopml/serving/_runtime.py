"""What a serving process holds: the loaded versions of one deployment, swapped as a whole.

A :class:`ServingState` is immutable. The app keeps one reference to the current state;
a deployment change builds a new state (loading every new version first) and replaces
that reference in one assignment, so a request that took the old state finishes on it.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict

from loopml.core import IntegrityError, NotFoundError, Settings, ValidationError
from loopml.registry import ModelRegistry
from loopml.registry._onnx import input_layout, onnx_inputs
from loopml.registry._trees import CompiledBoosting, compile_boosting
from loopml.serving._batching import Batcher
from loopml.serving._deployments import Deployment
from loopml.serving._scoring import (
    answer_dicts,
    answers,
    matrix_copy,
    numeric_matrix,
    plain,
    python_type,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# A compiled version may score a request of up to INLINE_ROWS records on the event loop,
# sparing the round trip through a worker thread (about 0.15 ms), when scoring that many
# takes it less than INLINE_BUDGET_MS: every other request waits meanwhile. That is a
# quarter of the shortest timeout a deployment may set, so none needs checking; a larger
# model (thousands of deep trees take milliseconds) goes through its batcher, under the
# deployment's timeout.
INLINE_ROWS = 8
INLINE_BUDGET_MS = 0.25

__all__ = [
    "INLINE_ROWS",
    "LoadedModel",
    "ServingState",
    "load_state",
    "request_model",
    "validate_records",
]


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, loaded: a scikit-learn-like model or an ONNX session.

    ``matrix_model``, when set, is a shallow copy of ``model`` that takes a plain float
    matrix (columns in signature order) instead of a DataFrame: scikit-learn checks a
    DataFrame's column names on every call, which costs several times the prediction itself
    on one row. It is set only when every input is numeric and a probe at load time gave the
    same answers both ways (see :func:`matrix_copy`). ``compiled``, when set, answers that
    matrix as scikit-learn would, without its input checks (see
    :mod:`loopml.registry._trees`); when the registry compiled the version at registration,
    ``model`` is None: scikit-learn is not even imported. ``inline_ms`` is what scoring
    :data:`INLINE_ROWS` records took the compiled form at load, when that is within
    :data:`INLINE_BUDGET_MS` (None otherwise, or when nothing is compiled).
    """

    ref: str
    model: Any
    inputs: tuple[dict[str, Any], ...]
    onnx_layout: tuple[dict[str, Any], ...] | None = None
    matrix_model: Any = None
    classes: tuple[Any, ...] | None = None  # an ONNX classifier's probability columns
    compiled: CompiledBoosting | None = None
    batcher: Batcher = field(init=False, compare=False, repr=False)
    inline_ms: float | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batcher", Batcher(_weak_predict(self)))
        cost = None if self.compiled is None else self.compiled.fastest_ms(INLINE_ROWS)
        fits = cost is not None and cost <= INLINE_BUDGET_MS
        object.__setattr__(self, "inline_ms", cost if fits else None)

    def scores_inline(self, rows: int) -> bool:
        """Whether a request of ``rows`` records may be scored on the event loop: the
        version is cheap enough and its batcher is idle (nothing would wait on it)."""
        return self.inline_ms is not None and rows <= INLINE_ROWS and self.batcher.idle

    @property
    def columns(self) -> list[str]:
        return [str(column["name"]) for column in self.inputs]

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """The rows as a DataFrame in the signature's column order and dtypes."""
        import pandas as pd  # not imported by a server whose models take a matrix

        frame = pd.DataFrame(rows, columns=self.columns)
        for column in self.inputs:
            kind = python_type(column.get("dtype", ""))
            name = column["name"]
            if kind is float or (kind is int and frame[name].isna().any()):
                frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            elif kind is int:
                frame[name] = frame[name].astype("int64")
        return frame

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One ``{"prediction", "probabilities"?}`` per row (runs in a worker thread)."""
        if self.onnx_layout is not None:
            return self._predict_onnx(rows)
        if self.compiled is not None:
            labels, proba = self.compiled.scores(numeric_matrix(rows, self.columns))
            return answer_dicts(labels, proba.tolist(), self.compiled.classes)
        if self.matrix_model is not None:
            return answers(self.matrix_model, numeric_matrix(rows, self.columns, order="F"))
        return answers(self.model, self.frame(rows))

    def _predict_onnx(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        layout = list(self.onnx_layout or ())
        if len(layout) == 1 and layout[0]["type"] == "float":  # one float tensor: no frame
            feed = {layout[0]["name"]: numeric_matrix(rows, layout[0]["columns"], np.float32)}
        else:
            feed = onnx_inputs(layout, self.frame(rows))
        outputs = self.model.run(None, feed)
        labels = np.asarray(outputs[0]).reshape(len(rows), -1)[:, 0].tolist()
        out: list[dict[str, Any]] = [{"prediction": plain(label)} for label in labels]
        if len(outputs) > 1 and len(outputs[1]) == len(out):
            probabilities = outputs[1]
            if isinstance(probabilities, np.ndarray) and self.classes is not None:
                # the export's plain [rows, classes] tensor, in the signature's class order
                names = [str(c) for c in self.classes]
                for item, row in zip(out, probabilities.astype(float).tolist(), strict=True):
                    item["probabilities"] = dict(zip(names, row, strict=True))
                return out
            for item, probs in zip(out, probabilities, strict=True):
                if isinstance(probs, dict):  # a ZipMap output
                    item["probabilities"] = {str(k): float(v) for k, v in probs.items()}
        return out


def _weak_predict(model: LoadedModel) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """``model.predict``, held weakly: the model owns its batcher, and a batcher holding the
    bound method would close a reference cycle that only the garbage collector frees (and,
    after ``gc.freeze()``, nothing would): a replaced version must go when its last user
    lets go of it."""
    method, ref = weakref.WeakMethod(model.predict), model.ref

    def predict(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bound = method()
        if bound is None:  # unreachable while a caller holds the model to submit to it
            raise RuntimeError(f"{ref} was unloaded")
        return bound(rows)

    return predict


@dataclass(frozen=True)
class ServingState:
    """One revision of a deployment with every version it needs loaded."""

    deployment: Deployment
    models: dict[str, LoadedModel]
    request_model: type[BaseModel]
    inputs: tuple[dict[str, Any], ...]

    @property
    def revision(self) -> int:
        return self.deployment.revision

    @functools.cached_property
    def fields(self) -> tuple[tuple[str, type, bool], ...]:
        """Each input's name, request field type and whether it may be null."""
        return tuple(
            (str(c["name"]), python_type(c.get("dtype", "")), bool(c.get("nullable")))
            for c in self.inputs
        )


def request_model(name: str, inputs: list[dict[str, Any]]) -> type[BaseModel]:
    """A pydantic model of one request record: one field per signature input.

    A nullable input may be null or missing; any other is required. Fields beyond the
    signature (a sticky key, say) are allowed and kept.
    """
    fields: dict[str, Any] = {}
    for column in inputs:
        kind = python_type(column.get("dtype", ""))
        if column.get("nullable"):
            fields[str(column["name"])] = (kind | None, None)
        else:
            fields[str(column["name"])] = (kind, ...)
    title = "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
    model: type[BaseModel] = pydantic.create_model(
        f"{title or 'Deployment'}Record",
        __config__=ConfigDict(extra="allow"),
        **fields,
    )
    return model


def load_state(
    settings: Settings, deployment: Deployment, previous: ServingState | None = None
) -> ServingState:
    """Load every version ``deployment`` needs (fallback included), reusing ``previous``'s.

    Versions are pinned (``name@N``) and immutable, so one loaded before is reused.
    """
    spec = deployment.spec
    reuse = (
        {} if previous is None or previous.deployment.spec.onnx != spec.onnx else previous.models
    )
    models: dict[str, LoadedModel] = {}
    with ModelRegistry(settings) as registry:
        for ref in spec.refs():
            if ref in models:
                continue
            if ref in reuse:
                models[ref] = reuse[ref]
                continue
            version = registry.get(ref)
            inputs = tuple(version.signature.get("inputs") or ())
            if not inputs:
                raise ValidationError(f"{version.ref} records no input signature: cannot serve it")
            if spec.onnx:
                layout = tuple(input_layout(version.signature))
                outputs = version.signature.get("outputs") or {}
                classes = outputs.get("classes") if isinstance(outputs, dict) else None
                models[ref] = LoadedModel(
                    ref,
                    registry.load_onnx(ref),
                    inputs,
                    layout,
                    classes=None if classes is None else tuple(classes),
                )
            else:
                models[ref] = _load_sklearn(registry, version.ref, version.extra, inputs)
    primary = models[spec.served()[0]]
    return ServingState(
        deployment, models, request_model(deployment.name, list(primary.inputs)), primary.inputs
    )


def _load_sklearn(
    registry: ModelRegistry, ref: str, extra: dict[str, Any], inputs: tuple[dict[str, Any], ...]
) -> LoadedModel:
    """The registry's compiled form when it has one that checks out here, else the model."""
    if isinstance(extra.get("compiled"), dict):
        try:
            return LoadedModel(ref, None, inputs, compiled=registry.load_compiled(ref))
        except (ValidationError, IntegrityError, NotFoundError) as exc:  # differs here, say
            log.warning("%s: not serving its compiled form (%s); loading the model", ref, exc)
    model = registry.load(ref)
    twin = matrix_copy(model, inputs)  # registered before loopml compiled, or not compilable
    columns = [str(c["name"]) for c in inputs]
    compiled = None if twin is None else compile_boosting(model, columns)
    return LoadedModel(ref, model, inputs, matrix_model=twin, compiled=compiled)


_MISSING = object()


def _plain_record(item: Any, fields: tuple[tuple[str, type, bool], ...]) -> dict[str, Any] | None:
    """The record pydantic would give for ``item`` when every field is plainly right (a
    float or int for a float, an int for an int, a bool, a str, or null where allowed);
    None for anything else, which pydantic then decides, with its errors.

    It gives what ``model_dump`` gives: signature fields in order (ints made floats for float
    fields, a missing nullable field as None), then the other fields as sent.
    """
    if type(item) is not dict:
        return None
    out: dict[str, Any] = {}
    for name, kind, nullable in fields:
        value = item.get(name, _MISSING)
        got = type(value)
        if got is kind:
            pass
        elif kind is float and got is int:
            if abs(value) > _EXACT_INT:  # pydantic's word on what a huge int becomes
                return None
            value = float(value)
        elif nullable and (value is None or value is _MISSING):
            value = None
        else:
            return None
        out[name] = value
    if len(out) != len(item) or any(name not in item for name in out):
        for name, value in item.items():
            if name not in out:
                out[name] = value
    return out


_EXACT_INT = 2**53


def validate_records(state: ServingState, body: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """The body's records as dicts, and pydantic-style errors (with ``loc`` from ``body``).

    Each error also says ``expected``: the signature dtype of the field at fault.
    """
    many = isinstance(body, list)
    items = body if many else [body]
    dtypes = {str(c["name"]): str(c.get("dtype", "")) for c in state.inputs}
    records: list[dict[str, Any]] = []
    errors: list[Any] = []
    if many and not items:
        return [], [{"loc": ["body"], "msg": "expected at least one record", "type": "too_short"}]
    fields = state.fields
    for index, item in enumerate(items):
        fast = _plain_record(item, fields)
        if fast is not None:
            records.append(fast)
            continue
        where: list[Any] = ["body", index] if many else ["body"]
        try:
            records.append(state.request_model.model_validate(item).model_dump())
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False, include_context=False):
                field = str(error["loc"][0]) if error["loc"] else None
                entry: dict[str, Any] = {
                    "loc": [*where, *error["loc"]],
                    "msg": error["msg"],
                    "type": error["type"],
                }
                if field in dtypes:
                    entry["expected"] = dtypes[field]
                errors.append(entry)
    return records, errors
