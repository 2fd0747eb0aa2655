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
that beats a binary search per value, and :mod:`._sketch_counts`); columns are processed
on all cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import pyarrow as pa

from loopml.core import ValidationError
from loopml.data import DatasetProfile
from loopml.monitoring._sketch_counts import (
    CategoryCounts,
    Counts,
    NumericCounts,
    count_values,
    empty_counts,
    same_bins,
)

__all__ = ["CategoryCounts", "DriftSketch", "NumericCounts"]

SKETCH_FORMAT = 1


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
        counts = {name: empty_counts(reference.columns[name]) for name in names}
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
                counted = list(pool.map(count_values, present, empties, arrays))
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
            if type(mine) is not type(counts) or not same_bins(mine, counts):
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
