"""The logged answers of a segment, parsed once and read as columns.

The log keeps each answer as JSON text (``{"prediction": ..., "probabilities": {...}}``).
Arrow's JSON reader turns a segment's answers into columns in one call; when their types
disagree (a constant fallback answering a string where the model answers numbers), each
answer is parsed on its own instead. Either way the monitor reads them as arrays.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from loopml.monitoring._predictions import canonical

__all__ = ["Outputs", "json_table"]

_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer)


def json_table(texts: list[str]) -> pa.Table | None:
    """JSON objects as one Arrow table, or None when Arrow cannot type them as columns."""
    if not texts:
        return pa.table({})
    if not all(text.startswith("{") for text in texts):
        # only objects make columns; and pyarrow 26's reader crashes (SIGSEGV) on a
        # line that is a bare null
        return None
    try:
        table = pajson.read_json(pa.BufferReader("\n".join(texts).encode()))
    except pa.ArrowInvalid:
        return None
    return table if table.num_rows == len(texts) else None


class Outputs:
    """Answers of ``n`` rows: canonical labels, numbers, class probabilities."""

    def __init__(self, texts: list[str]) -> None:
        self.n = len(texts)
        self._table = json_table(texts)
        self._rows: list[Any] | None = None
        if self._table is None:
            self._rows = [json.loads(t) for t in texts]

    def _predictions(self) -> pa.Array | None:
        if self._table is None or "prediction" not in self._table.column_names:
            return None
        return self._table["prediction"].combine_chunks()

    def labels(self) -> list[str | None]:
        """Each answer's prediction as canonical text (None: no prediction)."""
        column = self._predictions()
        if column is not None:
            if pa.types.is_boolean(column.type) or any(t(column.type) for t in _TEXT_TYPES):
                return list(column.cast(pa.string()).to_pylist())  # booleans: "true"/"false"
            return [None if v is None else canonical(v) for v in column.to_pylist()]
        if self._rows is None:
            return [None] * self.n
        return [
            canonical(r["prediction"])
            if isinstance(r, dict) and r.get("prediction") is not None
            else None
            for r in self._rows
        ]

    def numbers(self) -> np.ndarray[Any, Any]:
        """Each prediction as a float (NaN when it is not a number)."""
        column = self._predictions()
        if column is not None and (
            pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        ):
            filled = pc.fill_null(column.cast(pa.float64()), math.nan)
            return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64)
        values = np.full(self.n, math.nan)
        for i, label in enumerate(self.labels()):
            try:
                values[i] = float(label) if label is not None else math.nan
            except ValueError:
                continue
        return values

    def probabilities(
        self, keys: tuple[str, ...], rows: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """A ``len(rows)`` x ``len(keys)`` matrix of class probabilities (NaN: not given)."""
        matrix = np.full((len(rows), len(keys)), math.nan)
        if self._table is not None:
            if "probabilities" not in self._table.column_names:
                return matrix
            column = self._table["probabilities"].combine_chunks()
            if not pa.types.is_struct(column.type):
                return matrix
            picked = column.take(pa.array(rows, pa.int64()))
            names = {column.type.field(i).name for i in range(column.type.num_fields)}
            for j, key in enumerate(keys):
                if key in names:
                    values = picked.field(key)
                    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
                        filled = pc.fill_null(values.cast(pa.float64()), math.nan)
                        matrix[:, j] = filled.to_numpy(zero_copy_only=False)
            # a null struct (no probabilities) reads as zeros in its fields: blank it
            valid = np.asarray(picked.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            matrix[~valid] = math.nan
            return matrix
        assert self._rows is not None
        for i, row in enumerate(rows.tolist()):
            found = (
                self._rows[row].get("probabilities") if isinstance(self._rows[row], dict) else None
            )
            if isinstance(found, dict):
                for j, key in enumerate(keys):
                    value = found.get(key)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        matrix[i, j] = float(value)
        return matrix
