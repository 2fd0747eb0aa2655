"""What a serving process holds: the loaded versions of one deployment, swapped as a whole.

A :class:`ServingState` is immutable. The app keeps one reference to the current state;
a deployment change builds a new state (loading every new version first) and replaces
that reference in one assignment, so a request that took the old state finishes on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pydantic
from pydantic import BaseModel, ConfigDict

from loopml.core import Settings, ValidationError
from loopml.registry import ModelRegistry
from loopml.registry._onnx import input_layout, onnx_inputs
from loopml.serving._deployments import Deployment

__all__ = ["LoadedModel", "ServingState", "load_state", "request_model", "validate_records"]


def _plain(value: Any) -> Any:
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


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, loaded: a scikit-learn-like model or an ONNX session."""

    ref: str
    model: Any
    inputs: tuple[dict[str, Any], ...]
    onnx_layout: tuple[dict[str, Any], ...] | None = None

    @property
    def columns(self) -> list[str]:
        return [str(column["name"]) for column in self.inputs]

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """The rows as a DataFrame in the signature's column order and dtypes."""
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
        frame = self.frame(rows)
        if self.onnx_layout is not None:
            return self._predict_onnx(frame)
        labels = [_plain(v) for v in np.asarray(self.model.predict(frame)).tolist()]
        out: list[dict[str, Any]] = [{"prediction": label} for label in labels]
        classes = getattr(self.model, "classes_", None)
        if classes is not None and hasattr(self.model, "predict_proba"):
            proba = np.asarray(self.model.predict_proba(frame))
            names = [str(_plain(c)) for c in np.asarray(classes).tolist()]
            for item, row in zip(out, proba, strict=True):
                item["probabilities"] = {n: float(p) for n, p in zip(names, row, strict=True)}
        return out

    def _predict_onnx(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        feed = onnx_inputs(list(self.onnx_layout or ()), frame)
        outputs = self.model.run(None, feed)
        labels = np.asarray(outputs[0]).reshape(len(frame), -1)[:, 0].tolist()
        out: list[dict[str, Any]] = [{"prediction": _plain(label)} for label in labels]
        if len(outputs) > 1 and len(outputs[1]) == len(out):
            for item, probs in zip(out, outputs[1], strict=True):
                if isinstance(probs, dict):
                    item["probabilities"] = {str(k): float(v) for k, v in probs.items()}
        return out


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
                models[ref] = LoadedModel(ref, registry.load_onnx(ref), inputs, layout)
            else:
                models[ref] = LoadedModel(ref, registry.load(ref), inputs)
    primary = models[spec.served()[0]]
    return ServingState(
        deployment, models, request_model(deployment.name, list(primary.inputs)), primary.inputs
    )


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
    for index, item in enumerate(items):
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
