"""Counting new values in a stored profile's bins and categories.

Monitoring reuses a training profile as its drift reference without reading the
training data again: these functions put new values in the reference's bins.
Values go through Arrow first, so numpy arrays, pandas Series (numpy- or
Arrow-backed, timezone-aware or not) and Arrow arrays are all handled alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core import ValidationError
from loopml.data._profile_model import ColumnProfile, Histogram

__all__ = ["category_counts", "epoch_seconds", "histogram_counts", "to_arrow"]

_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}


def to_arrow(values: Any) -> pa.Array:
    """``values`` as one Arrow array; NaN in float input becomes null."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ValidationError(
            f"values must be a numpy array, pandas Series or pyarrow Array "
            f"(got {type(values).__name__} that Arrow cannot read: {exc})"
        ) from exc


def epoch_seconds(array: pa.Array) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Non-null temporal values as float epoch seconds, as the profile's SQL computes them.

    Microseconds since the epoch (floored, like DuckDB's ``epoch_us``), converted to
    float and divided by 1e6, so that a value sits on the same side of an edge here
    as it did when the profile was computed.
    """
    array = array.drop_null()
    if pa.types.is_date32(array.type):
        micros = array.cast(pa.int32()).to_numpy().astype(np.int64) * 86_400_000_000
    elif pa.types.is_date64(array.type):
        micros = array.cast(pa.int64()).to_numpy() * 1_000
    else:
        raw = array.cast(pa.int64()).to_numpy()
        unit = array.type.unit
        micros = raw // 1_000 if unit == "ns" else raw * _MICROS[unit]
    seconds: np.ndarray[Any, np.dtype[np.float64]] = micros.astype(np.float64) / 1e6
    return seconds


def _as_floats(values: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    array = to_arrow(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        return epoch_seconds(array)
    is_number = pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
    if not (is_number or pa.types.is_decimal(array.type) or pa.types.is_null(array.type)):
        raise ValidationError(
            f"histogram_counts needs numeric or datetime values (got Arrow type {array.type})"
        )
    floats: np.ndarray[Any, np.dtype[np.float64]] = (
        array.drop_null().cast(pa.float64(), safe=False).to_numpy()
    )
    finite: np.ndarray[Any, np.dtype[np.float64]] = floats[np.isfinite(floats)]
    return finite


def histogram_counts(reference: ColumnProfile | Histogram, values: Any) -> list[int]:
    """Count ``values`` in the bins of a stored histogram.

    Bins are the reference's: closed on the right (``edges[i] < x <= edges[i+1]``),
    the first also holding its left edge. Values below the first edge are counted
    in the first bin and values above the last edge in the last bin, so every
    value is counted: drift metrics such as PSI need the new distribution's full
    mass over the reference bins. Null, NaN and infinite values are not counted
    (the profile counts them as missing). Datetimes are compared in epoch seconds.
    On the data a profile was computed from, the result equals its stored counts.

    Raises:
        ValidationError: the reference has no histogram (it is not numeric or
            datetime, or it was all missing), or ``values`` are not numbers or times.
    """
    histogram = reference.histogram if isinstance(reference, ColumnProfile) else reference
    if histogram is None:
        name = reference.name if isinstance(reference, ColumnProfile) else "?"
        raise ValidationError(
            f"column {name!r} has no histogram to count into: it is not numeric or "
            "datetime, or it had no values in the reference"
        )
    floats = _as_floats(values)
    inner = np.asarray(histogram.edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, floats, side="left")
    counts = np.bincount(index, minlength=len(histogram.counts))
    return [int(n) for n in counts]


def _labels(values: Any) -> pa.Array:
    array = to_arrow(values)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        return array.drop_null().cast(pa.string())
    except (pa.ArrowException, NotImplementedError) as exc:
        raise ValidationError(
            f"category_counts cannot turn values of Arrow type {array.type} into text"
        ) from exc


def category_counts(reference: ColumnProfile, values: Any) -> tuple[list[int], int]:
    """Count ``values`` for each of the reference's ``top_k`` categories, plus the rest.

    Values are compared as text, as the profile stores them (booleans as
    ``"true"``/``"false"``). Returns the counts in ``top_k`` order and the number
    of non-null values outside it (categories never seen before land there).

    Raises:
        ValidationError: the reference is not categorical or boolean.
    """
    if reference.top_k is None:
        raise ValidationError(
            f"column {reference.name!r} is {reference.kind}, not categorical or boolean: "
            "it has no top_k categories to count into"
        )
    labels = _labels(values)
    found: dict[str, int] = {}
    if len(labels):
        tally = pc.value_counts(labels)
        found = dict(
            zip(
                tally.field("values").to_pylist(),
                tally.field("counts").to_pylist(),
                strict=True,
            )
        )
    counts = [int(found.get(value, 0)) for value, _ in reference.top_k]
    return counts, len(labels) - sum(counts)
