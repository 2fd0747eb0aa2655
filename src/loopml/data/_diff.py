"""Comparing two dataset profiles: schema changes and distribution shift (PSI).

:func:`diff_profiles` works on stored profiles alone, never on the data. The
population stability index of a shared column is computed over the *old*
profile's bins (numeric, datetime) or ``top_k`` categories plus an "other"
bucket (categorical, boolean)::

    PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

where ``p`` are the old shares and ``q`` the new ones, each floored at
``PSI_EPSILON`` (1e-4) so that an empty bin does not make the index infinite.
By the usual rule of thumb, below 0.1 is stable, 0.1-0.2 a moderate shift and
0.2 or more (``changed``) a significant one. Missing values are left out of PSI;
``missing_rate`` is reported beside it.

The new profile's values are not at hand, so its shares over the old bins are
estimated, and the estimate is exact whenever the two profiles have the same
edges (the same data gives PSI 0.0):

- numeric and datetime: the new histogram's counts are spread uniformly within
  each of its own bins (a piecewise-linear CDF) and read off at the old edges;
  the new profile's bins hold about 5% of its values each (quantile edges), so
  the error is a fraction of a bin's share. Values outside the old range fall
  in the old end bins, as in :func:`loopml.data.histogram_counts`.
- categorical: an old category in the new ``top_k`` takes its stored count; one
  missing from it gets the new "other" count spread evenly over the new
  categories outside ``top_k`` (exact when ``distinct <= top_k``); whatever is
  left is "other".

For an exact PSI on live data, count it with :func:`loopml.data.histogram_counts`
or :func:`loopml.data.category_counts` and pass the counts to :func:`psi`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from loopml.core import ValidationError
from loopml.data._profile_model import ColumnProfile, DatasetProfile, Histogram
from loopml.data._profile_table import format_value

__all__ = ["PSI_EPSILON", "ColumnDiff", "ProfileDiff", "diff_profiles", "psi"]

PSI_EPSILON = 1e-4


def psi(expected: Sequence[float], actual: Sequence[float]) -> float | None:
    """The population stability index of ``actual`` counts against ``expected`` ones.

    Both are counts over the same bins, in the same order. Returns ``None`` when
    either has no mass.
    """
    if len(expected) != len(actual):
        raise ValidationError(
            f"psi needs counts over the same bins (got {len(expected)} expected "
            f"and {len(actual)} actual)"
        )
    expected_total, actual_total = float(sum(expected)), float(sum(actual))
    if expected_total <= 0 or actual_total <= 0:
        return None
    index = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = max(e / expected_total, PSI_EPSILON)
        q = max(a / actual_total, PSI_EPSILON)
        index += (q - p) * math.log(q / p)
    return index


@dataclass(frozen=True, slots=True)
class ColumnDiff:
    """How one column shared by both profiles changed; pairs are ``(old, new)``."""

    name: str
    kind: tuple[str, str]
    dtype: tuple[str, str]
    missing_rate: tuple[float, float]
    mean: tuple[float | None, float | None] | None
    psi: float | None
    type_changed: bool
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary of this column's changes."""
        return {
            "name": self.name,
            "kind": list(self.kind),
            "dtype": list(self.dtype),
            "missing_rate": list(self.missing_rate),
            "mean": None if self.mean is None else list(self.mean),
            "psi": self.psi,
            "type_changed": self.type_changed,
            "changed": self.changed,
        }


@dataclass(frozen=True, slots=True)
class ProfileDiff:
    """The changes from an old profile to a new one."""

    added_columns: list[str]
    removed_columns: list[str]
    type_changes: dict[str, tuple[str, str]]
    row_count: tuple[int, int]
    columns: dict[str, ColumnDiff]

    @property
    def changed_columns(self) -> list[str]:
        """Shared columns whose type changed or whose PSI crossed the threshold."""
        return [name for name, column in self.columns.items() if column.changed]

    @property
    def changed(self) -> bool:
        """Whether any column was added, removed, retyped or shifted."""
        return bool(self.added_columns or self.removed_columns or self.changed_columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary (no NaN or infinity)."""
        return {
            "added_columns": list(self.added_columns),
            "removed_columns": list(self.removed_columns),
            "type_changes": {k: list(v) for k, v in self.type_changes.items()},
            "row_count": list(self.row_count),
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
            "changed": self.changed,
        }

    def to_table(self) -> Table:
        """A :class:`rich.table.Table` of the shared columns, readable in 100 columns."""
        old_rows, new_rows = self.row_count
        title = f"rows {old_rows:,} -> {new_rows:,}"
        if self.added_columns:
            title += f"; added: {', '.join(self.added_columns)}"
        if self.removed_columns:
            title += f"; removed: {', '.join(self.removed_columns)}"
        table = Table(title=Text(title), title_justify="left")
        table.add_column("column", max_width=22, overflow="ellipsis", no_wrap=True)
        table.add_column("type", max_width=26, overflow="fold")
        table.add_column("missing", no_wrap=True)
        table.add_column("mean", overflow="fold")
        table.add_column("psi", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for column in self.columns.values():
            old_type, new_type = column.dtype
            mean = "-"
            if column.mean is not None:
                mean = " -> ".join(format_value(v, "numeric") for v in column.mean)
            status = "type" if column.type_changed else "shift" if column.changed else "ok"
            table.add_row(  # Text, not markup: names and types may hold "[...]"
                Text(column.name),
                Text(f"{old_type} -> {new_type}" if column.type_changed else old_type),
                " -> ".join(f"{100 * r:.1f}%" for r in column.missing_rate),
                mean,
                "-" if column.psi is None else f"{column.psi:.3f}",
                Text(status, style="bold red" if column.changed else ""),
            )
        return table


def _cumulative(histogram: Histogram, x: float) -> float:
    """How many of the histogram's values are <= x, spreading each bin's uniformly."""
    total = 0.0
    edges, counts = histogram.edges, histogram.counts
    for low, high, count in zip(edges, edges[1:], counts, strict=False):
        if x >= high:
            total += count
        elif x > low:
            total += count * (x - low) / (high - low)
    return total


def _rebin(new: Histogram, old_edges: list[float]) -> list[float]:
    bounds = [0.0, *(_cumulative(new, e) for e in old_edges[1:-1]), float(new.total)]
    return [max(b - a, 0.0) for a, b in itertools.pairwise(bounds)]


def _numeric_psi(old: ColumnProfile, new: ColumnProfile) -> float | None:
    if old.histogram is None or new.histogram is None:
        return None
    return psi(old.histogram.counts, _rebin(new.histogram, old.histogram.edges))


def _categorical_psi(old: ColumnProfile, new: ColumnProfile) -> float | None:
    if old.top_k is None or new.top_k is None or new.distinct is None:
        return None
    known = dict(new.top_k)
    unseen = new.distinct - len(new.top_k)
    tail_share = (new.other_count or 0) / unseen if unseen > 0 else 0.0
    estimated = [float(known.get(value, tail_share)) for value, _ in old.top_k]
    other = max(new.count - sum(estimated), 0.0)
    expected = [float(n) for _, n in old.top_k] + [float(old.other_count or 0)]
    return psi(expected, [*estimated, other])


def _column_diff(old: ColumnProfile, new: ColumnProfile, threshold: float) -> ColumnDiff:
    type_changed = old.dtype != new.dtype or old.kind != new.kind
    value: float | None = None
    if old.kind == new.kind and old.kind in ("numeric", "datetime"):
        value = _numeric_psi(old, new)
    elif old.kind == new.kind:
        value = _categorical_psi(old, new)
    both_numeric = old.kind == new.kind == "numeric"
    return ColumnDiff(
        name=old.name,
        kind=(old.kind, new.kind),
        dtype=(old.dtype, new.dtype),
        missing_rate=(old.missing_rate, new.missing_rate),
        mean=(old.mean, new.mean) if both_numeric else None,
        psi=value,
        type_changed=type_changed,
        changed=type_changed or (value is not None and value >= threshold),
    )


def diff_profiles(a: DatasetProfile, b: DatasetProfile, *, threshold: float = 0.2) -> ProfileDiff:
    """Compare an old profile ``a`` with a new profile ``b``.

    A shared column is ``changed`` when its Arrow type or kind changed or its PSI
    (see the module docs for how it is estimated) is at least ``threshold``.

    Example::

        d = diff_profiles(train_profile, new_profile)
        d.changed_columns, d.columns["age"].psi
    """
    shared = [name for name in a.columns if name in b.columns]
    columns = {name: _column_diff(a.columns[name], b.columns[name], threshold) for name in shared}
    return ProfileDiff(
        added_columns=[name for name in b.columns if name not in a.columns],
        removed_columns=[name for name in a.columns if name not in b.columns],
        type_changes={n: c.dtype for n, c in columns.items() if c.type_changed},
        row_count=(a.row_count, b.row_count),
        columns=columns,
    )
