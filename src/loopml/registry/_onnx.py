"""ONNX export: convert a registered scikit-learn version, prove parity, record it.

Inputs. When every feature in the version's signature is numeric (integers, floats,
booleans), the ONNX model takes **one float32 tensor named ``input``** of shape
``[rows, features]``, columns in signature order. Otherwise it takes **one tensor per
column**, named after the column, shape ``[rows, 1]``: float32 for numeric columns, string
for the rest. :func:`onnx_inputs` builds either from a DataFrame; the layout is recorded
in ``extra["onnx"]["inputs"]``.

Outputs. Classifiers give ``label`` and ``probabilities`` (a plain ``[rows, classes]``
tensor, no ZipMap, columns in the order of ``signature.outputs.classes``); regressors give
``variable`` (``[rows, 1]``).

Parity, on up to ``sample_rows`` held-out rows (the test part of the version's split, or
the training dataset when it has none): every label equal and every probability within
``tolerance`` (absolute); for regression every prediction within
``tolerance * max(1, |sklearn prediction|)`` (absolute near zero, relative for large values,
since the ONNX model computes in float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from loopml.core import LoopmlError, ValidationError, now_ms

__all__ = ["OnnxExport", "export_onnx", "input_layout", "onnx_inputs"]

INSTALL_HINT = "pip install 'loopml[onnx]'"
_NUMERIC = ("int", "uint", "float", "bool")


@dataclass(frozen=True)
class OnnxExport:
    """A recorded export: the blob, its inputs and what parity measured."""

    ref: str
    digest: str
    size: int
    opset: dict[str, int]
    inputs: list[dict[str, Any]]
    outputs: list[str]
    parity: dict[str, Any]


def _require() -> tuple[Any, Any]:
    try:
        import onnxruntime
        import skl2onnx
    except ImportError as exc:
        raise ValidationError(
            f"ONNX export needs skl2onnx and onnxruntime ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    return skl2onnx, onnxruntime


def _numeric(dtype: str) -> bool:
    return str(dtype).lower().startswith(_NUMERIC)


def input_layout(signature: dict[str, Any]) -> list[dict[str, Any]]:
    """The ONNX inputs for a version's signature (see the module docstring)."""
    columns = signature.get("inputs") or []
    if not columns:
        raise ValidationError("the version records no input signature to build ONNX inputs from")
    if all(_numeric(c.get("dtype", "")) for c in columns):
        return [{"name": "input", "type": "float", "columns": [c["name"] for c in columns]}]
    return [
        {
            "name": c["name"],
            "type": "float" if _numeric(c.get("dtype", "")) else "string",
            "columns": [c["name"]],
        }
        for c in columns
    ]


def onnx_inputs(layout: list[dict[str, Any]], frame: Any) -> dict[str, np.ndarray[Any, Any]]:
    """The feed for an ONNX session: ``{input name: array}`` from a DataFrame's columns."""
    feed: dict[str, np.ndarray[Any, Any]] = {}
    for spec in layout:
        block = frame[spec["columns"]]
        if spec["type"] == "float":
            feed[spec["name"]] = block.to_numpy(dtype=np.float32)
        else:
            feed[spec["name"]] = block.astype(str).to_numpy(dtype=object)
    return feed


def _convert(skl2onnx: Any, model: Any, layout: list[dict[str, Any]], ref: str) -> bytes:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.base import is_classifier

    types = [
        (
            spec["name"],
            (FloatTensorType if spec["type"] == "float" else StringTensorType)(
                [None, len(spec["columns"])]
            ),
        )
        for spec in layout
    ]
    options = {"zipmap": False} if is_classifier(model) else None
    try:
        onx = skl2onnx.convert_sklearn(model, initial_types=types, options=options)
    except Exception as exc:
        raise ValidationError(
            f"{ref} cannot be converted to ONNX by skl2onnx: {type(exc).__name__}: {exc}"
        ) from None
    data: bytes = onx.SerializeToString()
    return data


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _where(x: Any, row: int) -> str:
    return f"sample row {row} (index {_plain(x.index[row])!r})"


def _parity(model: Any, outputs: list[Any], x: Any, task: str | None, tol: float) -> dict[str, Any]:
    """Compare ONNX outputs with the model's; raise ValidationError naming the worst value."""
    found: dict[str, Any] = {"rows": len(x), "tolerance": tol}
    if task == "regression":
        expected = np.asarray(model.predict(x), dtype=float).ravel()
        got = np.asarray(outputs[0], dtype=float).ravel()
        diff = np.abs(got - expected)
        scaled = diff / np.maximum(1.0, np.abs(expected))
        worst = int(np.argmax(scaled))
        found |= {"rule": "|onnx - sklearn| <= tolerance * max(1, |sklearn|)"}
        found |= {"max_abs_diff": float(diff.max()), "max_scaled_diff": float(scaled[worst])}
        if scaled[worst] > tol:
            raise ValidationError(
                f"ONNX parity failed at {_where(x, worst)}: prediction {got[worst]:.9g} vs "
                f"scikit-learn {expected[worst]:.9g} (difference {diff[worst]:.3g}, scaled "
                f"{scaled[worst]:.3g} > tolerance {tol:g}); nothing was recorded"
            )
        return found
    expected_labels = np.asarray(model.predict(x)).ravel()
    labels = np.asarray(outputs[0]).ravel()
    wrong = np.flatnonzero(labels != expected_labels)
    if len(wrong):
        first = int(wrong[0])
        raise ValidationError(
            f"ONNX parity failed: labels differ on {len(wrong)} of {len(x)} rows; first at "
            f"{_where(x, first)}: ONNX {_plain(labels[first])!r}, scikit-learn "
            f"{_plain(expected_labels[first])!r}; nothing was recorded"
        )
    found |= {"labels_equal": True, "rule": "labels equal; |probability difference| <= tolerance"}
    if len(outputs) > 1 and hasattr(model, "predict_proba"):
        expected = np.asarray(model.predict_proba(x), dtype=float)
        got = np.asarray(outputs[1], dtype=float).reshape(expected.shape)
        diff = np.abs(got - expected)
        row, col = (int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        classes = list(getattr(model, "classes_", range(diff.shape[1])))
        found |= {"max_abs_diff": float(diff[row, col])}
        if diff[row, col] > tol:
            raise ValidationError(
                f"ONNX parity failed at {_where(x, row)}, class {_plain(classes[col])!r}: "
                f"probability {got[row, col]:.9g} vs scikit-learn {expected[row, col]:.9g} "
                f"(difference {diff[row, col]:.3g} > tolerance {tol:g}); nothing was recorded"
            )
    return found


def export_onnx(
    registry: Any, ref: str, *, sample_rows: int = 200, tolerance: float = 1e-5
) -> OnnxExport:
    """Convert ``ref`` to ONNX, check parity on held-out rows, store and record the file.

    Raises ``ValidationError`` (and records nothing) when the flavor is not sklearn, the
    conversion fails or parity does not hold; the message names the worst value.
    """
    from loopml.governance import authorize
    from loopml.registry._gates import _held_out

    authorize(registry.identity, "model.export_onnx")
    if sample_rows < 1 or tolerance < 0:
        raise ValidationError("sample_rows must be at least 1 and tolerance at least 0")
    version = registry.get(ref)
    if version.flavor != "sklearn":
        raise ValidationError(
            f"{version.ref} has flavor {version.flavor!r}; ONNX export needs sklearn"
        )
    skl2onnx, onnxruntime = _require()
    layout = input_layout(version.signature)
    try:
        x, _ = _held_out(registry.settings, version)
    except LoopmlError as exc:
        raise ValidationError(f"{version.ref}: no rows to check ONNX parity on: {exc}") from None
    if len(x) > sample_rows:
        x = x.sample(n=sample_rows, random_state=0)
    model = registry.load(version.ref)
    data = _convert(skl2onnx, model, layout, version.ref)
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        outputs = session.run(None, onnx_inputs(layout, x))
    except Exception as exc:
        raise ValidationError(
            f"onnxruntime cannot run the ONNX model of {version.ref}: {type(exc).__name__}: {exc}"
        ) from None
    parity = _parity(model, outputs, x, version.extra.get("task"), tolerance)
    parity["sample"] = "held-out rows" if version.split else "training dataset"
    import onnx

    proto = onnx.load_from_string(data)
    opset = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
    names = [o.name for o in session.get_outputs()]
    digest = registry.artifacts.put_bytes(data).digest
    record = {
        "digest": digest,
        "size": len(data),
        "opset": opset,
        "inputs": layout,
        "outputs": names,
        "parity": parity,
        "skl2onnx": metadata.version("skl2onnx"),
        "onnxruntime": metadata.version("onnxruntime"),
        "exported_by": registry.identity.name,
        "ts_ms": now_ms(),
    }
    registry.record_onnx(version, record)
    return OnnxExport(version.ref, digest, len(data), opset, layout, names, parity)
