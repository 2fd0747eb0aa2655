"""The numpy column-at-a-time profile path agrees with the DuckDB path it stands in for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data import ColumnProfile, DatasetProfile, Histogram, _profile_columns, profile


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(11)
    floats = rng.normal(50.0, 7.0, rows)
    floats[::17] = np.nan
    floats[::29] = np.inf
    mask = np.zeros(rows, dtype=bool)
    mask[::13] = True
    return pa.table(
        {
            "f": pa.array(floats, mask=mask),
            "i": pa.array(rng.integers(-5, 40, rows)),
            "small": pa.array(rng.exponential(3.0, rows).astype(np.float32)),
            "u8": pa.array(rng.integers(0, 3, rows).astype(np.uint8)),
            "const": pa.array(np.full(rows, 4.25)),
            "empty": pa.array([None] * rows, pa.float64()),
            "label": pa.array(rng.choice(["a", "b", "c"], rows)),
        }
    )


def _assert_close(numpy_path: ColumnProfile, duckdb_path: ColumnProfile) -> None:
    exact = ("name", "kind", "dtype", "count", "missing", "min", "max", "distinct", "top_k")
    for field in exact:
        assert getattr(numpy_path, field) == getattr(duckdb_path, field), field
    for field in ("mean", "std"):
        theirs = getattr(duckdb_path, field)
        expected = None if theirs is None else pytest.approx(theirs, rel=1e-12)
        assert getattr(numpy_path, field) == expected, field
    if duckdb_path.quantiles is None:
        assert numpy_path.quantiles is None
        return
    assert numpy_path.quantiles == pytest.approx(duckdb_path.quantiles, rel=1e-12)
    for mine, theirs in (
        (numpy_path.histogram, duckdb_path.histogram),
        (numpy_path.fine, duckdb_path.fine),
    ):
        if theirs is None:
            assert mine is None
            continue
        assert mine is not None
        # both paths' quantiles may differ in the last bit, and one of them may then keep
        # two edges an ulp apart where the other keeps one: compare without such bins
        (my_edges, my_counts, my_sums), (edges, counts, sums) = _merged(mine), _merged(theirs)
        assert my_edges == pytest.approx(edges, rel=1e-12)
        assert my_counts == counts
        assert my_sums == pytest.approx(sums, rel=1e-9, abs=1e-9)


def _merged(histogram: Histogram) -> tuple[list[float], list[int], list[float]]:
    """The histogram with each bin narrower than a few ulps merged into the previous one."""
    edges, counts = [histogram.edges[0]], [histogram.counts[0]]
    sums = list(histogram.sums or [0.0] * len(histogram.counts))
    merged_sums = [sums[0]]
    for right, count, total in zip(
        histogram.edges[2:], histogram.counts[1:], sums[1:], strict=True
    ):
        if abs(right - edges[-1]) <= 1e-12 * max(abs(right), 1.0) or len(edges) == 1:
            counts[-1] += count
            merged_sums[-1] += total
            if len(edges) == 1:
                edges.append(right)
            else:
                edges[-1] = right
            continue
        edges.append(right)
        counts.append(count)
        merged_sums.append(total)
    return edges, counts, merged_sums


def _by_duckdb(source: object, monkeypatch: pytest.MonkeyPatch) -> DatasetProfile:
    with monkeypatch.context() as patch:
        patch.setattr(_profile_columns, "COLUMN_VALUES_BUDGET", 0)
        return profile(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("rows", [1, 5, 2_000, 150_000])
def test_numpy_path_matches_duckdb_on_parquet(
    rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(_table(rows), path, row_group_size=max(rows // 3, 1))
    mine, theirs = profile(path), _by_duckdb(path, monkeypatch)
    assert list(mine.columns) == list(theirs.columns)
    assert (mine.row_count, mine.exact_quantiles) == (theirs.row_count, theirs.exact_quantiles)
    for name in theirs.columns:
        _assert_close(mine.columns[name], theirs.columns[name])


def test_numpy_path_matches_duckdb_on_arrow_and_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(3_000)
    chunked = pa.concat_tables([table.slice(0, 1000), table.slice(1000)])
    for source in (chunked, table.to_pandas()):
        mine, theirs = profile(source), _by_duckdb(source, monkeypatch)
        assert list(mine.columns) == list(theirs.columns)
        for name in theirs.columns:
            _assert_close(mine.columns[name], theirs.columns[name])


def test_numpy_path_without_fine_histograms(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(4_000)
    mine = profile(table, fine_bins=0, bins=7)
    with monkeypatch.context() as patch:
        patch.setattr(_profile_columns, "COLUMN_VALUES_BUDGET", 0)
        theirs = profile(table, fine_bins=0, bins=7)
    for name in ("f", "i", "small"):
        assert mine.columns[name].fine is None
        _assert_close(mine.columns[name], theirs.columns[name])


def test_columns_on_several_threads_match_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(_table(20_000), path, row_group_size=3_000)
    monkeypatch.setattr(_profile_columns, "_usable_cores", lambda: 4)
    several = profile(path)
    monkeypatch.setattr(_profile_columns, "SORT_MEMORY", 0)  # no room for a second column
    assert profile(path).to_dict() == several.to_dict()


def test_parquet_files_with_other_schemas_go_to_duckdb(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [3.0], "y": [9]}), tmp_path / "b.parquet")
    prof = profile(str(tmp_path / "*.parquet"))
    assert prof.row_count == 3
    assert (prof.columns["x"].max, prof.columns["y"].missing) == (3.0, 2)
