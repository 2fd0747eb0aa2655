"""How step inputs and outputs become bytes in the artifact store, and back.

The format follows the value: JSON for plain data (readable in the store, and the
same bytes whatever Python wrote them), Parquet for DataFrames, ``.npy`` for NumPy
arrays, raw bytes, and pickle for everything else. The digest of these bytes is
what the cache compares, so equal values should give equal bytes.
"""

from __future__ import annotations

import io
import math
import pickle
from dataclasses import dataclass
from typing import Any

import blake3
import cloudpickle
import orjson

from loopml.core import ValidationError

__all__ = ["ValueRef", "digest_value", "dump_value", "load_value", "type_name"]


@dataclass(frozen=True)
class ValueRef:
    """A value stored in the artifact store: digest, format and Python type."""

    digest: str
    kind: str
    type: str

    def to_json(self) -> dict[str, str]:
        return {"digest": self.digest, "kind": self.kind, "type": self.type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValueRef:
        return cls(str(data["digest"]), str(data["kind"]), str(data.get("type", "")))


def type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _plain(value: Any) -> bool:
    """True for JSON data that reads back as equal and of the same types."""
    if value is None or isinstance(value, bool | str):
        return True
    if type(value) is int:
        return abs(value) < 2**63
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_plain(item) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _dump_frame(value: Any) -> bytes | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(value, preserve_index=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None  # mixed-type object columns and such: pickle keeps them exactly
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def dump_value(value: Any) -> tuple[bytes, str]:
    """``value`` as bytes, and the format used (json, parquet, npy, bytes, pickle)."""
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS), "json"
    if isinstance(value, bytes):
        return value, "bytes"
    module = type(value).__module__
    if module.startswith("pandas") and type(value).__name__ == "DataFrame":
        data = _dump_frame(value)
        if data is not None:
            return data, "parquet"
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        sink = io.BytesIO()
        np.save(sink, value, allow_pickle=False)
        return sink.getvalue(), "npy"
    try:
        return pickle.dumps(value, protocol=5), "pickle"
    except (pickle.PicklingError, TypeError, AttributeError):
        try:
            return cloudpickle.dumps(value, protocol=5), "pickle"
        except Exception as exc:
            raise ValidationError(
                f"a value of type {type_name(value)} cannot be stored: {exc}"
            ) from exc


def load_value(data: bytes, kind: str) -> Any:
    """The value that :func:`dump_value` turned into ``data``."""
    if kind == "json":
        return orjson.loads(data)
    if kind == "bytes":
        return data
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pandas()
    if kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "pickle":
        return pickle.loads(data)
    raise ValidationError(f"unknown stored value format {kind!r}")


def digest_value(value: Any) -> str:
    """The digest :func:`dump_value`'s bytes would be stored under."""
    data, _ = dump_value(value)
    return "blake3:" + blake3.blake3(data).hexdigest()
