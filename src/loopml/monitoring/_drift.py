"""Data drift of current data against a reference profile: :func:`compute_drift` and
:func:`detect_drift`.

The reference is a :class:`loopml.data.DatasetProfile` (the one the registry stored
for a model version's training data, see :func:`reference_profile`), never the
training data itself; the current data is reduced to a :class:`DriftSketch` of
counts on the reference's bins, then every statistic of :mod:`._drift_stats` is
computed from counts. See docs/monitoring.md.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa

from loopml.core import ValidationError
from loopml.data import ColumnProfile, DatasetProfile, Histogram
from loopml.monitoring import _drift_stats as st
from loopml.monitoring._drift_model import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    P_VALUE_METHODS,
    DriftResult,
    DriftThresholds,
    FeatureDrift,
)
from loopml.monitoring._sketch import DriftSketch
from loopml.monitoring._sketch_counts import CategoryCounts, NumericCounts

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BATCH_ROWS", "compute_drift", "detect_drift"]

BATCH_ROWS = 1 << 17
"""Rows per batch read from Parquet: bounded memory whatever the file size."""
_Floats = np.ndarray[Any, np.dtype[np.float64]]


def _cumulative_at(grid: _Floats, slots: Any, edges: Any) -> _Floats:
    """The total of grid ``slots`` (counts or sums) over values <= each of ``edges``
    (all among the ``grid``)."""
    cumulative = np.cumsum(slots)  # slot 0 is "<= grid[0]", so cumulative[i] is "<= grid[i]"
    position = np.searchsorted(grid, np.asarray(edges, dtype=np.float64))
    found: _Floats = cumulative[position].astype(np.float64)
    return found


def _wasserstein_inside(fine: Histogram, counts: NumericCounts, n_ref: int, n_cur: int) -> float:
    """The area between the CDFs over ``fine``'s bins from both sides' counts and sums:
    exact wherever the CDFs do not cross inside a bin (see :mod:`._drift_stats`)."""
    assert fine.sums is not None
    edges = np.asarray(fine.edges, dtype=np.float64)
    low = float(edges[0])
    cur_count = _cumulative_at(counts.edges, counts.counts, edges)
    cur_sum = _cumulative_at(counts.edges, counts.sums, edges)
    below_sum = counts.below * low - counts.below_distance
    # the first bin holds the first edge itself: start it after the values below it
    cur_count[0], cur_sum[0] = counts.below, below_sum
    ref_left = np.concatenate(([0.0], np.cumsum(fine.counts, dtype=np.float64)[:-1])) / n_ref
    return st.wasserstein_from_moments(
        edges,
        ref_left,
        np.asarray(fine.counts, dtype=np.float64) / n_ref,
        np.asarray(fine.sums, dtype=np.float64) / n_ref,
        cur_count[:-1] / n_cur,
        np.diff(cur_count) / n_cur,
        np.diff(cur_sum) / n_cur,
    )


def _reference_scale(column: ColumnProfile) -> float:
    """The reference's standard deviation (estimated from its histogram for datetimes)."""
    if column.std is not None and column.std > 0:
        return column.std
    histogram = column.fine or column.histogram
    if histogram is None or histogram.total == 0:
        return 1.0
    edges = np.asarray(histogram.edges)
    middle = (edges[:-1] + edges[1:]) / 2
    weights = np.asarray(histogram.counts, dtype=np.float64)
    mean = float(np.average(middle, weights=weights))
    spread = float(np.sqrt(np.average((middle - mean) ** 2, weights=weights)))
    return spread if spread > 0 else 1.0


def _numeric_statistics(column: ColumnProfile, counts: NumericCounts) -> dict[str, float | None]:
    assert column.histogram is not None
    n_ref, n_cur = column.count, counts.present
    coarse_edges = column.histogram.edges
    inner = _cumulative_at(counts.edges, counts.counts, coarse_edges[1:-1])
    coarse_current = np.diff(np.concatenate(([0.0], inner, [float(n_cur)])))
    fine = column.fine or column.histogram
    fine_edges = np.asarray(fine.edges, dtype=np.float64)
    # both CDFs at each edge from the second on; at the first edge, the mass *below* it,
    # so that a bin's values (the reference's first bin holds its minimum) stay together
    ref_cdf = np.concatenate(([0.0], np.cumsum(fine.counts, dtype=np.float64))) / n_ref
    cur_cdf = _cumulative_at(counts.edges, counts.counts, fine.edges) / n_cur
    cur_cdf[0] = counts.below / n_cur
    ks = st.ks_from_cdfs(ref_cdf[1:], cur_cdf[1:], counts.below / n_cur)
    tails = (counts.below_distance + counts.above_distance) / n_cur  # exact
    if fine.sums is not None:
        wasserstein = tails + _wasserstein_inside(fine, counts, n_ref, n_cur)
    else:  # a profile without bin sums: both CDFs linear within each bin
        wasserstein = tails + st.wasserstein_from_cdfs(fine_edges, ref_cdf, cur_cdf)
    return {
        "psi": st.psi(column.histogram.counts, coarse_current),
        "ks_statistic": ks,
        "ks_p_value": st.ks_p_value(ks, n_ref, n_cur),
        "wasserstein": wasserstein,
        "wasserstein_normed": wasserstein / _reference_scale(column),
    }


def _categorical_statistics(
    column: ColumnProfile, counts: CategoryCounts
) -> dict[str, float | None]:
    reference = [n for _, n in column.top_k or []] + [column.other_count or 0]
    statistic, p_value = st.chisquare(reference, counts.counts)
    return {
        "psi": st.psi(reference, counts.counts),
        "chisquare_statistic": statistic,
        "chisquare_p_value": p_value,
        "jensenshannon": st.jensenshannon(reference, counts.counts),
    }


_SCORE = {
    "psi": "psi",
    "ks": "ks_p_value",
    "wasserstein": "wasserstein_normed",
    "chisquare": "chisquare_p_value",
    "jensenshannon": "jensenshannon",
}
_NUMERIC_NONE = ("psi", "ks_statistic", "ks_p_value", "wasserstein", "wasserstein_normed")
_CATEGORICAL_NONE = ("psi", "chisquare_statistic", "chisquare_p_value", "jensenshannon")


def _method(
    column: ColumnProfile, n_current: int, thresholds: DriftThresholds
) -> tuple[str, float]:
    numeric = column.kind in ("numeric", "datetime")
    rule = thresholds.features.get(column.name)
    method: str = (rule.method if rule and rule.method else None) or (
        thresholds.numeric_method if numeric else thresholds.categorical_method
    )
    allowed = NUMERIC_METHODS if numeric else CATEGORICAL_METHODS
    if method not in allowed:
        raise ValidationError(
            f"feature {column.name!r} is {column.kind}: its drift method must be one of "
            f"{list(allowed)} (got {method!r})"
        )
    if method == "auto":
        # a test's p-value while either sample is small, a distance once both are large
        small = min(column.count, n_current) <= thresholds.small_reference
        method = (
            ("ks" if small else "wasserstein")
            if numeric
            else ("chisquare" if small else "jensenshannon")
        )
    threshold = rule.threshold if rule and rule.threshold is not None else None
    return method, threshold if threshold is not None else thresholds.threshold(method)


def _feature(
    column: ColumnProfile, counts: NumericCounts | CategoryCounts, thresholds: DriftThresholds
) -> FeatureDrift:
    method, threshold = _method(column, counts.present, thresholds)
    numeric = isinstance(counts, NumericCounts)
    if counts.present == 0:
        statistics: dict[str, float | None] = dict.fromkeys(
            _NUMERIC_NONE if numeric else _CATEGORICAL_NONE
        )
    elif isinstance(counts, NumericCounts):
        statistics = _numeric_statistics(column, counts)
    else:
        statistics = _categorical_statistics(column, counts)
    # too few current values: the statistics are shown, but decide nothing
    score = statistics[_SCORE[method]] if counts.present >= thresholds.min_current_rows else None
    if score is None:
        drifted = False
    elif method in P_VALUE_METHODS:
        drifted = score < threshold
    else:
        drifted = score >= threshold
    rows = column.count + column.missing
    current_rows = counts.present + counts.missing
    resolution = "categories" if not numeric else ("fine" if column.fine else "coarse")
    return FeatureDrift(
        name=column.name,
        kind=column.kind,
        method=method,
        threshold=float(threshold),
        score=score,
        drifted=drifted,
        statistics=statistics,
        n_reference=column.count,
        n_current=counts.present,
        missing_reference=column.missing / rows if rows else 0.0,
        missing_current=counts.missing / current_rows if current_rows else 0.0,
        resolution=resolution,
    )


def compute_drift(
    reference_profile: DatasetProfile,
    sketch: DriftSketch,
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """Drift of the rows counted in ``sketch`` against ``reference_profile``.

    Raises:
        ValidationError: the sketch was not made from this profile (a feature it
            counts is not in the profile, or on other bins), or a feature rule names
            a method that does not fit the feature's kind.
    """
    if not isinstance(reference_profile, DatasetProfile):
        raise ValidationError(
            f"reference_profile must be a DatasetProfile (got {type(reference_profile).__name__})"
        )
    if not isinstance(sketch, DriftSketch):
        raise ValidationError(f"sketch must be a DriftSketch (got {type(sketch).__name__})")
    thresholds = thresholds or DriftThresholds()
    if not isinstance(thresholds, DriftThresholds):
        raise ValidationError(
            f"thresholds must be DriftThresholds (got {type(thresholds).__name__})"
        )
    unknown = sorted(set(thresholds.features) - set(reference_profile.columns))
    if unknown:
        raise ValidationError(
            f"drift thresholds name features {unknown} that are not in the reference "
            f"profile (it has {sorted(reference_profile.columns)})"
        )
    reference = DriftSketch.empty(reference_profile, list(sketch.columns))
    features: dict[str, FeatureDrift] = {}
    skipped = dict(sketch.skipped)
    for name, counts in sketch.columns.items():
        rule = thresholds.features.get(name)
        if rule is not None and rule.ignore:
            skipped[name] = "ignored by its feature rule"
            continue
        expected = reference.columns[name]
        same = type(expected) is type(counts) and (
            np.array_equal(expected.edges, counts.edges)
            if isinstance(expected, NumericCounts) and isinstance(counts, NumericCounts)
            else getattr(expected, "labels", None) == getattr(counts, "labels", None)
        )
        if not same:
            raise ValidationError(
                f"the sketch counts feature {name!r} on other bins than this reference "
                "profile has: it was made from another profile"
            )
        features[name] = _feature(reference_profile.columns[name], counts, thresholds)
    evaluated = [f for f in features.values() if f.evaluated]
    share = sum(f.drifted for f in evaluated) / len(evaluated) if evaluated else 0.0
    return DriftResult(
        features=features,
        share_drifted=share,
        drifted=bool(evaluated) and share >= thresholds.share,
        n_reference=reference_profile.row_count,
        n_current=sketch.rows,
        thresholds=thresholds,
        skipped=skipped,
    )


CurrentData: TypeAlias = "str | Path | list[str | Path] | pa.Table | pa.RecordBatch | pd.DataFrame"


def _parquet_files(current: str | Path | list[str | Path]) -> list[str]:
    items = current if isinstance(current, list) else [current]
    if not items:
        raise ValidationError("current must name at least one Parquet file (got an empty list)")
    files: list[str] = []
    for item in items:
        if not isinstance(item, str | Path):
            raise ValidationError(
                f"each Parquet path must be a str or Path (got {type(item).__name__})"
            )
        text = str(item)
        if glob.has_magic(text):
            matched = sorted(glob.glob(text))  # noqa: PTH207
            if not matched:
                raise ValidationError(f"Parquet glob {text!r} matches no file")
            files += matched
        elif not Path(text).is_file():
            raise ValidationError(f"Parquet file {text!r} does not exist")
        else:
            files.append(text)
    return files


def _parquet_batches(
    files: list[str], columns: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    for path in files:
        try:
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            wanted = [c for c in columns if c in parquet.schema_arrow.names]
            metadata = parquet.metadata
            groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
            if max(groups, default=0) <= 4 * batch_rows:
                # a row group at a time: iter_batches reads ahead and holds about twice
                # the memory, for no gain in speed
                for index in range(len(groups)):
                    yield from parquet.read_row_group(index, columns=wanted).to_batches(
                        max_chunksize=batch_rows
                    )
            else:  # huge row groups: stream pages, never a whole group
                yield from parquet.iter_batches(batch_size=batch_rows, columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"cannot read Parquet file {path!r}: {exc}") from exc


def _batches(
    current: Any, columns: list[str], batch_rows: int
) -> Iterable[pa.Table | pa.RecordBatch]:
    if isinstance(current, str | Path | list):
        return _parquet_batches(_parquet_files(current), columns, batch_rows)
    if isinstance(current, pa.RecordBatch):
        return [current]
    if isinstance(current, pa.Table):
        batches: list[pa.RecordBatch] = current.to_batches(max_chunksize=batch_rows)
        return batches
    import pandas as pd

    if isinstance(current, pd.DataFrame):
        wanted = [c for c in columns if c in current.columns]
        arrays = []
        for name in wanted:  # column by column, so a failure names its column
            try:
                arrays.append(pa.array(current[name], from_pandas=True))
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise ValidationError(
                    f"column {name!r} of the DataFrame mixes types that Arrow cannot hold "
                    f"in one column ({type(exc).__name__}: {exc}); give it one type"
                ) from exc
        table = (
            pa.Table.from_arrays(arrays, names=wanted)
            if wanted
            else pa.table({"__rows__": pa.nulls(len(current))})  # none compared: rows only
        )
        return list(table.to_batches(max_chunksize=batch_rows))
    raise ValidationError(
        "current must be a Parquet path (or a list or glob of them), a pyarrow Table or "
        f"RecordBatch, or a pandas DataFrame (got {type(current).__name__})"
    )


def _reference(reference: Any) -> DatasetProfile:
    if isinstance(reference, DatasetProfile):
        return reference
    from loopml.data import profile

    return profile(reference)


def detect_drift(
    reference: DatasetProfile | Any,
    current: CurrentData,
    thresholds: DriftThresholds | None = None,
    *,
    columns: Iterable[str] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> DriftResult:
    """Data drift of ``current`` against ``reference``, per feature and for the dataset.

    Args:
        reference: a stored :class:`~loopml.data.DatasetProfile` (nothing of the
            training data is read), or data to profile first (anything
            :func:`loopml.data.profile` takes).
        current: Parquet path(s) or a glob, read in batches of ``batch_rows``
            rows and only the compared columns, so memory stays bounded; or a
            pyarrow Table, RecordBatch or pandas DataFrame.
        thresholds: see :class:`DriftThresholds`; defaults follow common practice.
        columns: the features to compare (default: every numeric, categorical and
            boolean column of the reference; name datetime columns to include them).
        batch_rows: rows per batch.

    Raises:
        ValidationError: bad input (a missing file, a column unknown to the
            reference, values that cannot be compared with it).

    Example::

        result = detect_drift(catalog.profile("flights@1"), "today/*.parquet")
        result.drifted, result.share_drifted, result.drifted_features
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValidationError(f"batch_rows must be an int >= 1 (got {batch_rows!r})")
    profile = _reference(reference)
    sketch = DriftSketch.empty(profile, columns)
    for batch in _batches(current, list(sketch.columns), batch_rows):
        sketch.update(batch)
    return compute_drift(profile, sketch, thresholds)
