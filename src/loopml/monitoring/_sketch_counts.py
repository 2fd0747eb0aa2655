"""Per-feature counts of a drift sketch and how a batch of values is counted.

:class:`NumericCounts` holds a numeric or datetime feature's counts and sums on the
reference's grid (see :mod:`._sketch`); :class:`CategoryCounts` a categorical or
boolean feature's counts of the reference's top values and "other". Both add up.

Numeric values are binned by sorting each batch and searching the grid's edges in
it: 1,000 edges make a binary search per value slow on unsorted data (a mispredicted
branch at every step), and numpy sorts vectorised without holding the GIL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core import ValidationError
from loopml.data import ColumnProfile

__all__ = [
    "CategoryCounts",
    "Counts",
    "NumericCounts",
    "count_values",
    "empty_counts",
    "grid_of",
    "same_bins",
    "segment_sums",
]

_Floats = np.ndarray[Any, np.dtype[np.float64]]
_Ints = np.ndarray[Any, np.dtype[np.int64]]
_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}


@dataclass(slots=True)
class NumericCounts:
    """Counts of one numeric or datetime feature on the reference's grid (see module docs)."""

    edges: _Floats
    counts: _Ints  # len(edges) + 1 slots: <= edges[0], the bins, > edges[-1]
    sums: _Floats  # the sum of the values in each slot
    below: int = 0  # values < edges[0]
    below_distance: float = 0.0  # sum of edges[0] - x over them
    above_distance: float = 0.0  # sum of x - edges[-1] over values > edges[-1]
    missing: int = 0

    @property
    def present(self) -> int:
        """Values counted (missing ones excluded)."""
        return int(self.counts.sum())

    def add(self, other: NumericCounts) -> None:
        self.counts += other.counts
        self.sums += other.sums
        self.below += other.below
        self.below_distance += other.below_distance
        self.above_distance += other.above_distance
        self.missing += other.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
            "below": self.below,
            "below_distance": self.below_distance,
            "above_distance": self.above_distance,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericCounts:
        edges = np.asarray(data["edges"], dtype=np.float64)
        counts = np.asarray(data["counts"], dtype=np.int64)
        sums = np.asarray(data["sums"], dtype=np.float64)
        if not len(counts) == len(sums) == len(edges) + 1:
            raise ValidationError(
                f"a numeric sketch needs len(counts) == len(sums) == len(edges) + 1 "
                f"(got {len(counts)} counts, {len(sums)} sums, {len(edges)} edges)"
            )
        return cls(
            edges=edges,
            counts=counts,
            sums=sums,
            below=int(data["below"]),
            below_distance=float(data["below_distance"]),
            above_distance=float(data["above_distance"]),
            missing=int(data["missing"]),
        )


@dataclass(slots=True)
class CategoryCounts:
    """Counts of one categorical or boolean feature: ``labels`` then "other"."""

    labels: list[str]
    counts: _Ints  # len(labels) + 1: each label, then every other value
    missing: int = 0

    @property
    def present(self) -> int:
        return int(self.counts.sum())

    def add(self, other: CategoryCounts) -> None:
        self.counts += other.counts
        self.missing += other.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "counts": self.counts.tolist(),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoryCounts:
        labels = [str(label) for label in data["labels"]]
        counts = np.asarray(data["counts"], dtype=np.int64)
        if len(counts) != len(labels) + 1:
            raise ValidationError(
                f"a categorical sketch needs len(counts) == len(labels) + 1 "
                f"(got {len(counts)} counts, {len(labels)} labels)"
            )
        return cls(labels=labels, counts=counts, missing=int(data["missing"]))


Counts = NumericCounts | CategoryCounts


def grid_of(column: ColumnProfile) -> _Floats:
    """The edges a sketch counts a numeric column on: coarse and fine edges together."""
    assert column.histogram is not None
    edges = list(column.histogram.edges)
    if column.fine is not None:
        edges += column.fine.edges
    grid: _Floats = np.unique(np.asarray(edges, dtype=np.float64))
    return grid


def empty_counts(column: ColumnProfile) -> Counts:
    if column.kind in ("numeric", "datetime"):
        grid = grid_of(column)
        slots = len(grid) + 1
        return NumericCounts(
            edges=grid, counts=np.zeros(slots, dtype=np.int64), sums=np.zeros(slots)
        )
    labels = [label for label, _ in column.top_k or []]
    return CategoryCounts(labels=labels, counts=np.zeros(len(labels) + 1, dtype=np.int64))


def _epoch_seconds(array: pa.Array) -> pa.Array:
    """Temporal values as float epoch seconds, floored to microseconds like the profile's SQL."""
    if pa.types.is_date32(array.type):
        micros = pc.multiply(array.cast(pa.int32()).cast(pa.int64()), 86_400_000_000)
    elif pa.types.is_date64(array.type):
        micros = pc.multiply(array.cast(pa.int64()), 1_000)
    else:
        raw = array.cast(pa.int64())
        unit = array.type.unit
        if unit == "ns":
            micros = pc.floor(pc.divide(raw.cast(pa.float64()), 1_000.0)).cast(pa.int64())
        else:
            micros = pc.multiply(raw, _MICROS[unit])
    return pc.divide(micros.cast(pa.float64()), 1e6)


def _floats(name: str, array: pa.Array) -> tuple[_Floats, int]:
    """Present values as float64 and the number of missing ones (null, NaN, infinite)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        array = _epoch_seconds(array)
    elif not (pa.types.is_floating(kind) or pa.types.is_null(kind)):
        try:
            array = array.cast(pa.float64())
        except (pa.ArrowException, NotImplementedError) as exc:
            raise ValidationError(
                f"feature {name!r} is numeric in the reference but the data holds "
                f"Arrow type {kind} that is not a number: {exc}"
            ) from exc
    values = array.drop_null().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    return values, len(array) - len(values)


def segment_sums(ordered: _Floats, bounds: _Ints) -> _Floats:
    """The sum of ``ordered[bounds[i]:bounds[i + 1]]`` for each ``i`` (0 when empty)."""
    sums: _Floats = np.zeros(len(bounds) - 1)
    filled = np.diff(bounds) > 0
    if filled.any():  # reduceat runs each segment to the next start: skip the empty ones
        sums[filled] = np.add.reduceat(ordered, bounds[:-1][filled])
    return sums


def _count_numeric(name: str, empty: NumericCounts, array: pa.Array) -> NumericCounts:
    values, missing = _floats(name, array)
    ordered = np.sort(values)
    edges = empty.edges
    bounds = np.concatenate(([0], np.searchsorted(ordered, edges, side="right"), [len(ordered)]))
    below = int(np.searchsorted(ordered, edges[0], side="left"))
    low, high = float(edges[0]), float(edges[-1])
    above_from = int(bounds[-2])
    above = len(ordered) - above_from
    return NumericCounts(
        edges=edges,
        counts=np.diff(bounds).astype(np.int64, copy=False),
        sums=segment_sums(ordered, bounds),
        below=below,
        below_distance=below * low - float(ordered[:below].sum()),
        above_distance=float(ordered[above_from:].sum()) - above * high,
        missing=missing,
    )


def _count_categories(name: str, empty: CategoryCounts, array: pa.Array) -> CategoryCounts:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        labels = array.drop_null().cast(pa.string())
    except (pa.ArrowException, NotImplementedError) as exc:
        raise ValidationError(
            f"feature {name!r} is categorical but its Arrow type {array.type} cannot become text"
        ) from exc
    counts = np.zeros(len(empty.labels) + 1, dtype=np.int64)
    if len(labels):
        tally = pc.value_counts(labels)
        found = dict(
            zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True)
        )
        for i, label in enumerate(empty.labels):
            counts[i] = found.get(label, 0)
        counts[-1] = len(labels) - counts[:-1].sum()
    return CategoryCounts(labels=empty.labels, counts=counts, missing=len(array) - len(labels))


def count_values(name: str, empty: Counts, array: pa.Array) -> Counts:
    if isinstance(empty, NumericCounts):
        return _count_numeric(name, empty, array)
    return _count_categories(name, empty, array)


def same_bins(a: Counts, b: Counts) -> bool:
    if isinstance(a, NumericCounts) and isinstance(b, NumericCounts):
        return bool(np.array_equal(a.edges, b.edges))
    if isinstance(a, CategoryCounts) and isinstance(b, CategoryCounts):
        return a.labels == b.labels
    return False
