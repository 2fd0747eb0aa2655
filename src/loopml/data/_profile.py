"""Dataset profiles: per-column statistics stored with every dataset version.

Integer and float columns of Parquet files, Arrow tables and DataFrames (up to
32 million rows) are profiled one column at a time in numpy
(:mod:`loopml.data._profile_columns`): each is read alone and sorted, so memory
stays at about one column whatever their number. Every other column (text,
booleans, times, decimals) is profiled by DuckDB over the data where it lies
(Parquet files are scanned, DataFrames and Arrow tables are registered, not
copied) in two scans plus one ``GROUP BY`` per categorical column, so memory stays
bounded and ten million rows take seconds. A profile is also the drift reference
monitoring compares live data with, *without* reading the training data again;
hence the histogram edges are stored, and :func:`histogram_counts` /
:func:`category_counts` count new values in exactly the same bins and categories.

Binning. Bin edges are the reference's own quantiles at ``k / bins``
(``k = 1 .. bins - 1``) between its min and max, deduplicated, so each bin holds
about the same share of the reference (the usual PSI practice; equal-width bins
put almost all of a skewed column in one or two bins and leave the rest empty).
A value that fills several quantiles (a spike at zero) collapses them into one
wider bin, so a profile may have fewer than ``bins`` bins; a constant column has
a single ``[v, v]`` bin and an all-missing column none. Bins are closed on the
right; see :class:`Histogram`.

Missing values. Nulls, and NaN or infinities in float columns, are missing: they
count in ``missing``/``missing_rate`` and in no statistic or bin.

Exactness. On the numpy path quantiles (and so edges) are exact at any size:
linear interpolation between order statistics, as DuckDB's ``quantile_cont``
(the two may differ in the last bit). On DuckDB's path they are exact up to
200,000 rows; above that they come from a uniform reservoir sample of 100,000
values per column, with a rank error of about 0.3 percentage points, and may differ
in the last digits between runs; the profile says so with ``exact_quantiles=False``.
Histogram counts, min, max, missing rates, distinct counts and top values are always
exact; mean and std are exact up to float rounding, whose last bits can vary with
DuckDB's multi-threaded summation order on large inputs.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa

from loopml.core import ValidationError
from loopml.data._profile_columns import column_source, numeric_profiles
from loopml.data._profile_counts import category_counts, histogram_counts
from loopml.data._profile_model import ColumnKind, ColumnProfile, DatasetProfile, Histogram
from loopml.data._profile_scan import quote, scan_profile

__all__ = [
    "ColumnKind",
    "ColumnProfile",
    "DatasetProfile",
    "Histogram",
    "category_counts",
    "histogram_counts",
    "profile",
]

_VIEW = "loopml_profile_source"
ProfileSource: TypeAlias = str | Path | list[str | Path] | pa.Table | pd.DataFrame


def _parquet_paths(source: str | Path | list[str | Path]) -> list[str]:
    items = source if isinstance(source, list) else [source]
    if not items:
        raise ValidationError("source must name at least one Parquet file (got an empty list)")
    paths: list[str] = []
    for item in items:
        if not isinstance(item, str | Path):
            raise ValidationError(
                f"each Parquet path must be a str or Path (got {type(item).__name__})"
            )
        text = str(item)
        remote = "://" in text
        if glob.has_magic(text) and not remote:
            # Path.glob takes no absolute patterns; glob.glob does.
            if not glob.glob(text):  # noqa: PTH207
                raise ValidationError(f"Parquet glob {text!r} matches no file")
        elif not remote and not Path(text).is_file():
            raise ValidationError(f"Parquet file {text!r} does not exist")
        paths.append(text)
    return paths


def _check_unique(frame: pd.DataFrame) -> None:
    names = [str(name) for name in frame.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(
            f"DataFrame column names must be unique (got duplicates {duplicates})"
        )


def _open(con: Any, source: Any) -> str:
    """Make ``source`` readable on ``con``; return what to write after ``FROM``."""
    if isinstance(source, _Projection):
        columns = ", ".join(quote(name) for name in source.names)
        return f"(SELECT {columns} FROM {_open(con, source.source)})"
    if isinstance(source, pd.DataFrame):
        _check_unique(source)
        con.register(_VIEW, source)
        return _VIEW
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        con.register(_VIEW, source)
        return _VIEW
    if isinstance(source, str | Path | list):
        files = ", ".join("'" + path.replace("'", "''") + "'" for path in _parquet_paths(source))
        return f"read_parquet([{files}], union_by_name = true)"
    raise ValidationError(
        "source must be a Parquet path (or a list or glob of them), a pyarrow Table "
        f"or a pandas DataFrame (got {type(source).__name__})"
    )


def _describe(source: Any) -> str:
    if isinstance(source, str | Path):
        return f"Parquet source {str(source)!r}"
    if isinstance(source, list):
        return f"{len(source)} Parquet sources"
    if isinstance(source, _Projection):
        return _describe(source.source)
    return f"{type(source).__name__} source"


FINE_BINS = 1000
"""The default number of fine bins: a drift statistic's error from binning is under 0.1%."""


def profile(
    source: ProfileSource, *, bins: int = 20, top_k: int = 20, fine_bins: int = FINE_BINS
) -> DatasetProfile:
    """Compute the profile of a dataset.

    Args:
        source: a Parquet file path, a list of paths or a glob; a pyarrow Table;
            or a pandas DataFrame (its index is not profiled).
        bins: the most histogram bins per numeric or datetime column (edges at
            the column's quantiles, see the module docs).
        top_k: how many most frequent values to keep per categorical or boolean column.
        fine_bins: the most bins of each numeric or datetime column's ``fine``
            histogram, the resolution of monitoring's Kolmogorov-Smirnov and
            Wasserstein statistics; 0 leaves it out (and skips its scan).

    Raises:
        ValidationError: ``bins`` or ``top_k`` is out of range, the source is of an
            unsupported type, a file is missing, or DuckDB cannot read it.

    Example::

        prof = profile("train.parquet")
        prof.columns["age"].histogram.edges  # reusable on new data
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationError(f"bins must be an int >= 1 (got {bins!r})")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValidationError(f"top_k must be an int >= 0 (got {top_k!r})")
    if isinstance(fine_bins, bool) or not isinstance(fine_bins, int) or fine_bins < 0:
        raise ValidationError(f"fine_bins must be an int >= 0 (got {fine_bins!r})")
    paths = _parquet_paths(source) if isinstance(source, str | Path | list) else None
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pd.DataFrame):
        _check_unique(source)
    try:
        columnar = column_source(source, paths)
        if columnar is None:
            return _duckdb_profile(source, bins=bins, top_k=top_k, fine_bins=fine_bins)
        numeric = numeric_profiles(columnar, bins=bins, fine_bins=fine_bins)
    except (OSError, pa.ArrowException) as exc:
        raise ValidationError(f"cannot profile {_describe(source)}: {exc}") from exc
    order = [str(name) for name in source.columns] if isinstance(source, pd.DataFrame) else None
    order = order or columnar.schema.names
    rest = [name for name in order if name not in numeric]
    if not rest:
        return DatasetProfile(
            row_count=columnar.row_count,
            columns=numeric,
            bins=bins,
            top_k=top_k,
            exact_quantiles=True,
            fine_bins=fine_bins,
        )
    others = _duckdb_profile(_project(source, rest), bins=bins, top_k=top_k, fine_bins=fine_bins)
    estimated = any(c.quantiles is not None for c in others.columns.values())
    merged = numeric | others.columns
    return DatasetProfile(
        row_count=columnar.row_count,
        columns={name: merged[name] for name in order},
        bins=bins,
        top_k=top_k,
        exact_quantiles=others.exact_quantiles or not estimated,
        fine_bins=fine_bins,
    )


def _project(source: Any, names: list[str]) -> Any:
    """``source`` with only the columns ``names``, for DuckDB (no data copied for Arrow)."""
    if isinstance(source, pd.DataFrame):
        return source[names]
    if isinstance(source, pa.Table):
        return source.select(names)
    return _Projection(source, names)


class _Projection:
    """Some columns of Parquet files, which :func:`_open` reads with DuckDB."""

    def __init__(self, source: Any, names: list[str]) -> None:
        self.source, self.names = source, names


def _duckdb_profile(source: Any, *, bins: int, top_k: int, fine_bins: int) -> DatasetProfile:
    import duckdb  # only when a column needs it: the numeric path does without

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        relation = _open(con, source)
        return scan_profile(con, relation, bins=bins, top_k=top_k, fine_bins=fine_bins)
    except duckdb.Error as exc:
        raise ValidationError(f"cannot profile {_describe(source)}: {exc}") from exc
    finally:
        con.close()
