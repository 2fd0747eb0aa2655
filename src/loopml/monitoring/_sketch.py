"""Mergeable counts of live data on a reference profile's bins: :class:`DriftSketch`.

A sketch holds, per feature, everything drift statistics need from the current
window, and nothing that grows with it:

- numeric and datetime features: counts on the reference's *grid* (the union of
  its coarse histogram edges and its fine edges), one slot per grid bin plus one
  for values at or below the first edge and one for values above the last, and
  the sum of the values in each slot; the number and the summed distance of values
  strictly outside the reference's range; missing values;
- categorical and boolean features: counts of each of the reference's ``top_k``
  values, of every other value, and of missing values.

Counts add up, so :meth:`DriftSketch.update` takes batches in any order and
:meth:`DriftSketch.merge` joins the sketches of consecutive windows: a new window
costs work proportional to its own rows. Values are binned by sorting each batch's
column and searching the grid in it (see :mod:`loopml.data._profile_fine` for why
that beats a binary search per value); columns are processed on all cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.core import ValidationError
from loopml.data import ColumnProfile, DatasetProfile

__all__ = ["CategoryCounts", "DriftSketch", "NumericCounts"]

_Floats = np.ndarray[Any, np.dtype[np.float64]]
_Ints = np.ndarray[Any, np.dtype[np.int64]]
_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
SKETCH_FORMAT = 1


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


def _empty_counts(column: ColumnProfile) -> Counts:
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


def _count(name: str, empty: Counts, array: pa.Array) -> Counts:
    if isinstance(empty, NumericCounts):
        return _count_numeric(name, empty, array)
    return _count_categories(name, empty, array)


def _default_columns(reference: DatasetProfile) -> tuple[list[str], dict[str, str]]:
    chosen, skipped = [], {}
    for name, column in reference.columns.items():
        if column.kind == "datetime":
            skipped[name] = "datetime columns move with time; name it in columns= to compare it"
        elif column.kind == "numeric" and column.histogram is None:
            skipped[name] = "no values in the reference"
        else:
            chosen.append(name)
    return chosen, skipped


class DriftSketch:
    """Mergeable counts of current data on a reference profile's bins.

    Build one with :meth:`empty`, feed it Arrow tables or record batches with
    :meth:`update`, join sketches of consecutive windows with :meth:`merge`, store
    it with :meth:`to_dict`, and compare it with :func:`compute_drift`.
    """

    __slots__ = ("columns", "rows", "skipped")

    def __init__(self, columns: dict[str, Counts], rows: int, skipped: dict[str, str]) -> None:
        self.columns = columns
        self.rows = rows
        self.skipped = skipped

    @classmethod
    def empty(cls, reference: DatasetProfile, columns: Iterable[str] | None = None) -> Self:
        """A sketch with no rows yet on ``reference``'s bins.

        ``columns`` (default: every numeric, categorical and boolean column of the
        reference; datetime columns only when named) are the features to count.

        Raises:
            ValidationError: a named column is not in the reference or has no bins.
        """
        if not isinstance(reference, DatasetProfile):
            raise ValidationError(
                f"reference must be a DatasetProfile (got {type(reference).__name__})"
            )
        if columns is None:
            names, skipped = _default_columns(reference)
        else:
            names, skipped = list(columns), {}
            unknown = [n for n in names if n not in reference.columns]
            if unknown:
                raise ValidationError(
                    f"columns {unknown} are not in the reference profile "
                    f"(it has {sorted(reference.columns)})"
                )
            empty = [
                n
                for n in names
                if reference.columns[n].kind in ("numeric", "datetime")
                and reference.columns[n].histogram is None
            ]
            if empty:
                raise ValidationError(
                    f"columns {empty} had no values in the reference: nothing to compare with"
                )
        counts = {name: _empty_counts(reference.columns[name]) for name in names}
        return cls(counts, 0, skipped)

    def update(self, data: pa.Table | pa.RecordBatch) -> Self:
        """Count a batch of rows; a feature absent from it counts as missing. Returns self.

        Raises:
            ValidationError: ``data`` is not Arrow, or a feature's values have a type
                that cannot be compared with the reference (text for a numeric one).
        """
        if not isinstance(data, pa.Table | pa.RecordBatch):
            raise ValidationError(
                f"DriftSketch.update takes a pyarrow Table or RecordBatch "
                f"(got {type(data).__name__})"
            )
        names = set(data.schema.names)
        present = [name for name in self.columns if name in names]
        for name in self.columns:
            if name not in names:
                self.columns[name].missing += data.num_rows
        if present:
            arrays = [_combined(data.column(name)) for name in present]
            empties = [self.columns[name] for name in present]
            workers = max(1, min(len(present), os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                counted = list(pool.map(_count, present, empties, arrays))
            for name, found in zip(present, counted, strict=True):
                self.columns[name].add(found)  # type: ignore[arg-type]
        self.rows += data.num_rows
        return self

    def merge(self, other: DriftSketch) -> DriftSketch:
        """A new sketch counting the rows of both (windows on the same reference).

        Raises:
            ValidationError: the sketches count different features or on other bins.
        """
        if not isinstance(other, DriftSketch):
            raise ValidationError(f"can only merge a DriftSketch (got {type(other).__name__})")
        if list(self.columns) != list(other.columns):
            raise ValidationError(
                f"cannot merge sketches of different features "
                f"({list(self.columns)} and {list(other.columns)})"
            )
        merged = DriftSketch.from_dict(self.to_dict())
        for name, counts in other.columns.items():
            mine = merged.columns[name]
            if type(mine) is not type(counts) or not _same_bins(mine, counts):
                raise ValidationError(
                    f"cannot merge sketches of feature {name!r}: they count on different "
                    "bins (made from different reference profiles)"
                )
            mine.add(counts)  # type: ignore[arg-type]
        merged.rows += other.rows
        return merged

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary that :meth:`from_dict` reads back."""
        return {
            "format_version": SKETCH_FORMAT,
            "rows": self.rows,
            "columns": {
                name: {"kind": "numeric" if isinstance(c, NumericCounts) else "categorical"}
                | c.to_dict()
                for name, c in self.columns.items()
            },
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftSketch:
        """Rebuild a sketch from :meth:`to_dict`.

        Raises:
            ValidationError: the dictionary is malformed or of an unknown format.
        """
        if not isinstance(data, Mapping) or data.get("format_version") != SKETCH_FORMAT:
            raise ValidationError(
                f"a drift sketch must be a dict with format_version {SKETCH_FORMAT} "
                f"(got {type(data).__name__}"
                + (
                    f" version {data.get('format_version')!r})"
                    if isinstance(data, Mapping)
                    else ")"
                )
            )
        try:
            columns: dict[str, Counts] = {}
            for name, entry in data["columns"].items():
                kind = entry["kind"]
                columns[str(name)] = (
                    NumericCounts.from_dict(entry)
                    if kind == "numeric"
                    else CategoryCounts.from_dict(entry)
                )
            skipped = {str(k): str(v) for k, v in data.get("skipped", {}).items()}
            return cls(columns, int(data["rows"]), skipped)
        except ValidationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"drift sketch is malformed: {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"DriftSketch(rows={self.rows}, features={list(self.columns)})"


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def _same_bins(a: Counts, b: Counts) -> bool:
    if isinstance(a, NumericCounts) and isinstance(b, NumericCounts):
        return bool(np.array_equal(a.edges, b.edges))
    if isinstance(a, CategoryCounts) and isinstance(b, CategoryCounts):
        return a.labels == b.labels
    return False
