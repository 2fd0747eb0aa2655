"""The DuckDB queries behind :func:`loopml.data.profile`.

Three kinds of query, whatever the number of columns:

1. one scan for the row count and, per column, count, min, max, mean and the
   quantiles (the reported ones plus the ``k / bins`` ones that become bin edges);
   boolean columns get their true count here too;
2. one scan for the exact histogram counts at those edges (cumulative
   ``count_if(x <= edge)`` per interior edge) and the centred sum of squares that
   gives the standard deviation (two-pass, so it stays accurate far from zero);
   skipped when step 4 runs, which counts the same (its edges include these) and sums
   the same squares;
3. one ``GROUP BY`` per categorical column for its exact distinct count and top values;
4. when ``fine_bins`` is set, the fine histograms of numeric and datetime columns:
   one reservoir sample for their edges and one streamed pass for their counts, or
   a single read of the values up to ``EXACT_QUANTILE_MAX_ROWS`` rows
   (see :mod:`loopml.data._profile_fine`).

Values are normalised in SQL before aggregation: floats that are NaN or infinite
become NULL (missing), integers and decimals become DOUBLE, and datetimes become
epoch seconds, ``CAST(epoch_us(x) AS DOUBLE) / 1e6``, the very arithmetic that
:func:`loopml.data.histogram_counts` repeats in numpy so that both count alike.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from loopml.data._profile_fine import fine_histograms
from loopml.data._profile_model import (
    QUANTILE_KEYS,
    ColumnKind,
    ColumnProfile,
    DatasetProfile,
    Histogram,
)

__all__ = [
    "EXACT_QUANTILE_MAX_ROWS",
    "SAMPLE_SIZE",
    "bin_edges",
    "quantile_fractions",
    "scan_profile",
]

EXACT_QUANTILE_MAX_ROWS = 200_000
"""Up to this many rows, quantiles are exact (``quantile_cont``, linear interpolation)."""
SAMPLE_SIZE = 100_000
"""Above it, quantiles and edges come from a uniform reservoir sample of this many values."""


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    kind: ColumnKind
    dtype: str
    alias: str
    expr: str


def quote(name: str) -> str:
    """A DuckDB identifier for ``name``, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def _double(value: float) -> str:
    return f"CAST('{value!r}' AS DOUBLE)"


def kind_of(arrow_type: pa.DataType) -> ColumnKind:
    """The profile kind of an Arrow type; anything unordered or nested is categorical."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numeric"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "categorical"


def dtype_name(arrow_type: pa.DataType) -> str:
    """The Arrow type as text, with storage variants folded (large_string -> string).

    Parquet files, Arrow tables and DataFrames spell the same logical type in
    different ways; folding keeps a diff from reporting a type change that is not one.
    """
    if pa.types.is_dictionary(arrow_type):
        return dtype_name(arrow_type.value_type)
    if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    if pa.types.is_large_binary(arrow_type) or pa.types.is_binary_view(arrow_type):
        return "binary"
    return str(arrow_type)


def _plan(schema: pa.Schema) -> list[_Column]:
    columns = []
    for index, arrow_field in enumerate(schema):
        kind = kind_of(arrow_field.type)
        column = quote(arrow_field.name)
        if kind == "numeric" and pa.types.is_floating(arrow_field.type):
            expr = f"CASE WHEN isfinite({column}) THEN CAST({column} AS DOUBLE) END"
        elif kind == "numeric":
            expr = f"CAST({column} AS DOUBLE)"
        elif kind == "datetime":
            expr = (
                f"CASE WHEN isfinite({column}) THEN "
                f"CAST(epoch_us({column}) AS DOUBLE) / CAST(1000000 AS DOUBLE) END"
            )
        else:
            expr = column
        columns.append(
            _Column(arrow_field.name, kind, dtype_name(arrow_field.type), f"_c{index}", expr)
        )
    return columns


def quantile_fractions(bins: int) -> list[float]:
    return sorted(set(QUANTILE_KEYS.values()) | {k / bins for k in range(1, bins)})


def bin_edges(low: float, high: float, cut_points: list[float]) -> list[float]:
    inner = (min(max(q, low), high) for q in cut_points if q is not None and math.isfinite(q))
    edges = sorted({low, high, *inner})
    return edges if len(edges) > 1 else [low, low]


def _scan(con: Any, source: str, columns: list[_Column], aggregates: list[str]) -> tuple[Any, ...]:
    inner = ", ".join(f"{c.expr} AS {c.alias}" for c in columns) or "1 AS _none"
    row = con.execute(f"SELECT {', '.join(aggregates)} FROM (SELECT {inner} FROM {source})")
    result: tuple[Any, ...] = row.fetchone()
    return result


def scan_profile(
    con: Any, source: str, *, bins: int, top_k: int, fine_bins: int = 0
) -> DatasetProfile:
    """Profile the relation ``source`` (a table name or table function) on ``con``."""
    schema = con.sql(f"SELECT * FROM {source} LIMIT 0").arrow().schema
    columns = _plan(schema)
    row_count = int(con.execute(f"SELECT count(*) FROM {source}").fetchone()[0])
    exact = row_count <= EXACT_QUANTILE_MAX_ROWS
    fractions = quantile_fractions(bins)
    fraction_list = "[" + ", ".join(_double(f) for f in fractions) + "]"
    if exact:
        quantile = f"quantile_cont({{}}, {fraction_list})"
    else:
        quantile = f"reservoir_quantile({{}}, {fraction_list}, {SAMPLE_SIZE})"

    aggregates = ["count(*)"]
    for c in columns:
        aggregates.append(f"count({c.alias})")
        if c.kind in ("numeric", "datetime"):
            aggregates += [f"min({c.alias})", f"max({c.alias})", f"avg({c.alias})"]
            aggregates.append(quantile.format(c.alias))
        elif c.kind == "boolean":
            aggregates.append(f"count_if({c.alias})")
    first = iter(_scan(con, source, columns, aggregates)[1:])

    stats: dict[str, dict[str, Any]] = {}
    for c in columns:
        count = int(next(first))
        entry: dict[str, Any] = {"count": count}
        if c.kind in ("numeric", "datetime"):
            entry["min"], entry["max"], entry["mean"], values = (next(first) for _ in range(4))
            if count:
                by_fraction = dict(zip(fractions, values, strict=True))
                entry["quantiles"] = {k: float(by_fraction[f]) for k, f in QUANTILE_KEYS.items()}
                cuts = [by_fraction[k / bins] for k in range(1, bins)]
                entry["edges"] = bin_edges(float(entry["min"]), float(entry["max"]), cuts)
        elif c.kind == "boolean":
            entry["true"] = int(next(first))
        stats[c.name] = entry

    if fine_bins:  # also gives the coarse counts and the std: no second scan
        _fine_pass(con, source, columns, stats, exact=exact, fine_bins=fine_bins)
    else:
        _second_pass(con, source, columns, stats)
    for c in columns:
        if c.kind == "categorical":
            stats[c.name].update(_categories(con, source, c, top_k))
    profiles = {c.name: _column_profile(c, stats[c.name], row_count, top_k) for c in columns}
    return DatasetProfile(
        row_count=row_count,
        columns=profiles,
        bins=bins,
        top_k=top_k,
        exact_quantiles=exact,
        fine_bins=fine_bins,
    )


def _second_pass(
    con: Any, source: str, columns: list[_Column], stats: dict[str, dict[str, Any]]
) -> None:
    binned = [c for c in columns if "edges" in stats[c.name]]
    if not binned:
        return
    aggregates: list[str] = []
    for c in binned:
        entry = stats[c.name]
        aggregates += [f"count_if({c.alias} <= {_double(e)})" for e in entry["edges"][1:-1]]
        if c.kind == "numeric" and entry["count"] > 1:
            # x * x, not x ** 2: DuckDB's pow() makes this scan three times slower
            centred = f"({c.alias} - {_double(entry['mean'])})"
            aggregates.append(f"sum({centred} * {centred})")
    if not aggregates:  # only constant columns, each a single bin
        aggregates = ["count(*)"]
    values = iter(_scan(con, source, binned, aggregates))
    for c in binned:
        entry = stats[c.name]
        cumulative = [int(next(values)) for _ in entry["edges"][1:-1]]
        bounds = [0, *cumulative, entry["count"]]
        entry["counts"] = [b - a for a, b in itertools.pairwise(bounds)]
        if c.kind == "numeric" and entry["count"] > 1:
            entry["std"] = math.sqrt(max(float(next(values)), 0.0) / (entry["count"] - 1))


def _fine_pass(
    con: Any,
    source: str,
    columns: list[_Column],
    stats: dict[str, dict[str, Any]],
    *,
    exact: bool,
    fine_bins: int,
) -> None:
    binned = [c for c in columns if "edges" in stats[c.name]]
    if not binned:
        return
    inner = ", ".join(f"{c.expr} AS {c.alias}" for c in binned)
    found = fine_histograms(
        con,
        f"SELECT {inner} FROM {source}",
        [stats[c.name]["edges"] for c in binned],
        [float(stats[c.name]["mean"]) for c in binned],
        fine_bins=fine_bins,
        exact=exact,
        sample_size=SAMPLE_SIZE,
    )
    for c, (edges, counts, sums, squares) in zip(binned, found, strict=True):
        entry = stats[c.name]
        entry["fine"] = Histogram(edges=edges, counts=counts, sums=sums)
        # each coarse bin is a run of fine bins: the coarse edges are among the fine ones
        cumulative = list(itertools.accumulate(counts, initial=0))
        bounds = [cumulative[edges.index(e)] for e in entry["edges"][1:-1]]
        bounds = [0, *bounds, entry["count"]]
        entry["counts"] = [b - a for a, b in itertools.pairwise(bounds)]
        if c.kind == "numeric" and entry["count"] > 1:
            entry["std"] = math.sqrt(max(squares, 0.0) / (entry["count"] - 1))


def _categories(con: Any, source: str, c: _Column, top_k: int) -> dict[str, Any]:
    column = quote(c.name)
    rows = con.execute(
        f"SELECT CAST(v AS VARCHAR) AS label, n, count(*) OVER () AS distinct_count "
        f"FROM (SELECT {column} AS v, count(*) AS n FROM {source} "
        f"WHERE {column} IS NOT NULL GROUP BY {column}) "
        f"ORDER BY n DESC, label LIMIT {max(top_k, 1)}"
    ).fetchall()
    top = [(str(label), int(n)) for label, n, _ in rows][:top_k]
    return {"distinct": int(rows[0][2]) if rows else 0, "top_k": top}


def _column_profile(c: _Column, entry: dict[str, Any], row_count: int, top_k: int) -> ColumnProfile:
    count = entry["count"]
    missing = row_count - count
    base: dict[str, Any] = {
        "name": c.name,
        "kind": c.kind,
        "dtype": c.dtype,
        "count": count,
        "missing": missing,
        "missing_rate": missing / row_count if row_count else 0.0,
    }
    if c.kind in ("numeric", "datetime") and count:
        base |= {
            "min": float(entry["min"]),
            "max": float(entry["max"]),
            "mean": float(entry["mean"]),
            "quantiles": entry["quantiles"],
            "histogram": Histogram(edges=entry["edges"], counts=entry["counts"]),
        }
        if "fine" in entry:
            base["fine"] = entry["fine"]
        if c.kind == "numeric":
            base["std"] = entry.get("std")
    elif c.kind == "boolean":
        pairs = [("true", entry["true"]), ("false", count - entry["true"])]
        seen = sorted((p for p in pairs if p[1]), key=lambda p: (-p[1], p[0]))
        entry |= {"distinct": len(seen), "top_k": seen[:top_k]}
    if c.kind in ("boolean", "categorical"):
        top = entry["top_k"]
        base |= {
            "distinct": entry["distinct"],
            "top_k": top,
            "other_count": count - sum(n for _, n in top),
        }
    return ColumnProfile(**base)
