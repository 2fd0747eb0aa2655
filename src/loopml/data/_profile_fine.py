"""Fine histograms: the fourth step of :func:`loopml.data.profile`.

Monitoring computes Kolmogorov-Smirnov and Wasserstein statistics against a stored
profile, without the training data. A 20-bin histogram is too coarse for them, so
each numeric and datetime column also gets a ``fine`` histogram: edges at its
quantiles ``k / fine_bins`` plus the coarse histogram's edges (so each coarse bin
is a run of fine bins), exact counts, and the sum of the values in each bin; and the
centred sum of squares that gives the standard deviation, so that the profile's
second scan is not needed.

Edges. Up to ``EXACT_QUANTILE_MAX_ROWS`` rows the values are read once and the
quantiles are exact (linear interpolation, like the coarse edges); the same sorted
values give the counts. Above it, the quantiles come from one reservoir sample of
rows, then a streamed pass counts every value exactly.

Counting. 1,000 bins mean a binary search per value, which DuckDB's ``histogram``
and numpy's ``searchsorted`` both do slowly on unsorted data (a mispredicted branch
per step). Sorting each batch (vectorised; numpy releases the GIL, so columns sort
on all cores) and searching the edges in the sorted values is several times faster.
The values arrive normalised by the profile's SQL (NaN and infinities as NULL,
datetimes in epoch seconds) as Arrow batches, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

__all__ = ["BATCH_ROWS", "fine_histograms", "quantile_edges", "sorted_counts"]

BATCH_ROWS = 1 << 18
"""Rows per Arrow batch streamed out of DuckDB."""

_Floats = np.ndarray[Any, np.dtype[np.float64]]
_Ints = np.ndarray[Any, np.dtype[np.int64]]
_R = TypeVar("_R")


def _sorted_values(values: pa.Array | pa.ChunkedArray) -> _Floats:
    present = values.drop_null().cast(pa.float64())
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks()
    return np.sort(present.to_numpy(zero_copy_only=False))


def quantile_edges(ordered: _Floats, fine_bins: int, coarse: list[float]) -> list[float]:
    """Edges at the quantiles ``k / fine_bins`` of sorted values, the ``coarse`` edges
    included, all within ``coarse[0] .. coarse[-1]``, sorted and deduplicated."""
    low, high = coarse[0], coarse[-1]
    if len(ordered) == 0 or low == high:
        return list(coarse)
    # linear interpolation between order statistics, as numpy's and DuckDB's default
    position = np.arange(1, fine_bins) / fine_bins * (len(ordered) - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    cuts = ordered[below] * (1 - weight) + ordered[above] * weight
    cuts = np.clip(cuts[np.isfinite(cuts)], low, high)
    return [float(e) for e in np.unique(np.concatenate((cuts, coarse)))]


def sorted_counts(ordered: _Floats, edges: list[float]) -> tuple[_Ints, _Floats]:
    """Counts and sums of sorted values within ``edges[0] .. edges[-1]`` in bins closed
    on the right, the first also holding its left edge (as :class:`~loopml.data.Histogram`)."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    bounds = np.concatenate(([0], np.searchsorted(ordered, inner, side="right"), [len(ordered)]))
    counts: _Ints = np.diff(bounds)
    sums: _Floats = np.zeros(len(counts))
    filled = counts > 0
    if filled.any():  # reduceat runs each segment to the next start: skip the empty ones
        sums[filled] = np.add.reduceat(ordered, bounds[:-1][filled])
    return counts, sums


def _parallel(function: Callable[..., _R], *args: Iterable[Any]) -> list[_R]:
    workers = max(1, min(len(list(args[0])) if args else 1, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, *args))


def _relation(con: Any, sql: str) -> Any:
    """``sql`` as a lazy DuckDB relation, which streams Arrow batches (``execute`` would
    materialise the whole result first, and copy it)."""
    # con.sql() refuses to run while an execute() result is unfinished, as the profile's
    # one-row aggregates leave theirs: finish it with an empty fetch
    con.execute("SELECT 1 WHERE false").fetchall()
    return con.sql(sql)


def _arrow(con: Any, sql: str) -> pa.Table:
    table: pa.Table = _relation(con, sql).to_arrow_table()
    return table


def _squares(ordered: _Floats, mean: float) -> float:
    centred = ordered - mean
    return float(np.dot(centred, centred))


def fine_histograms(
    con: Any,
    sql: str,
    coarse: list[list[float]],
    means: list[float],
    *,
    fine_bins: int,
    exact: bool,
    sample_size: int,
) -> list[tuple[list[float], list[int], list[float], float]]:
    """The fine ``(edges, counts, sums)`` of each column ``sql`` selects, and the sum
    of its squared distances to ``means[i]``.

    ``sql`` selects one DOUBLE column per entry of ``coarse`` (that column's coarse
    histogram edges), NULL for missing values.
    """
    if exact:
        table = _arrow(con, sql)
        ordered = _parallel(_sorted_values, table.columns)
        edges = [quantile_edges(o, fine_bins, c) for o, c in zip(ordered, coarse, strict=True)]
        counted = _parallel(sorted_counts, ordered, edges)
        squares = _parallel(_squares, ordered, means)
        return [
            (e, [int(n) for n in c], [float(v) for v in s], q)
            for e, (c, s), q in zip(edges, counted, squares, strict=True)
        ]
    sample = _arrow(con, f"SELECT * FROM ({sql}) USING SAMPLE reservoir({sample_size} ROWS)")
    ordered = _parallel(_sorted_values, sample.columns)
    edges = [quantile_edges(o, fine_bins, c) for o, c in zip(ordered, coarse, strict=True)]
    del sample, ordered
    totals = [np.zeros(len(e) - 1, dtype=np.int64) for e in edges]
    sums = [np.zeros(len(e) - 1, dtype=np.float64) for e in edges]
    squares = [0.0] * len(edges)
    for batch in _relation(con, sql).to_arrow_reader(BATCH_ROWS):
        ordered = _parallel(_sorted_values, batch.columns)
        counted = _parallel(sorted_counts, ordered, edges)
        for total, summed, (counts, bin_sums) in zip(totals, sums, counted, strict=True):
            total += counts
            summed += bin_sums
        for i, value in enumerate(_parallel(_squares, ordered, means)):
            squares[i] += value
    return [
        (e, [int(n) for n in t], [float(v) for v in s], q)
        for e, t, s, q in zip(edges, totals, sums, squares, strict=True)
    ]
