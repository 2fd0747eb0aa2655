"""A log segment's ``inputs`` as the drift sketch's columns: only the model's features,
each converted on its own to the kind its reference profile has.

Requests may carry extra fields (the serving app accepts them and logs them as sent)
and clients send odd values: a field whose JSON type changes between rows, text in a
numeric feature. None of that may stop a deployment's monitoring, so fields that are
not features are never read, and a feature value that cannot be converted counts as
missing and is tallied as *invalid* (reported per feature, see ``VersionWindow``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from loopml.data import DatasetProfile
from loopml.monitoring._outputs import json_table

__all__ = ["feature_table"]


def _number(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number (or text spelling one)."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    """``value`` as a category label, as Arrow casts it; None for objects and lists."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def _fits(kind: str, array: pa.ChunkedArray) -> bool:
    """Whether Arrow's typed column can go to the sketch as it is."""
    t = array.type
    if pa.types.is_null(t):
        return True
    if kind == "numeric":
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))
    return bool(pa.types.is_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t))


def _convert(kind: str, values: Sequence[Any]) -> tuple[pa.Array, int]:
    """One feature's values row by row, and how many were present but would not convert."""
    convert = _number if kind == "numeric" else _text
    out = [None if v is None else convert(v) for v in values]
    invalid = sum(1 for v, o in zip(values, out, strict=True) if v is not None and o is None)
    return pa.array(out, pa.float64() if kind == "numeric" else pa.string()), invalid


def feature_table(
    texts: list[str], profile: DatasetProfile, features: Sequence[str]
) -> tuple[pa.Table, dict[str, int]]:
    """The ``features`` of the ``inputs`` JSON texts as a table for the drift sketch, and
    the count of invalid values per feature (only features with some)."""
    typed = json_table(texts)  # Arrow's reader, fast; None when some field's type varies
    rows: list[Any] | None = None
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    invalid: dict[str, int] = {}
    for name in features:
        kind = "numeric" if profile.columns[name].kind == "numeric" else "categorical"
        if typed is not None:
            if name not in typed.column_names:
                continue  # absent from every row: the sketch counts it missing
            if _fits(kind, typed[name]):
                columns[name] = typed[name]
                continue
        if rows is None:
            rows = [_loads(text) for text in texts]
        values = [row.get(name) if isinstance(row, dict) else None for row in rows]
        columns[name], bad = _convert(kind, values)
        if bad:
            invalid[name] = bad
    if not columns:  # no feature in any row: still the segment's number of rows
        return pa.table({"__rows__": pa.nulls(len(texts))}), invalid
    return pa.table(columns), invalid


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None
