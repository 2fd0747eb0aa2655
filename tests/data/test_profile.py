"""Dataset profiles, reusable histogram bins, and profile diffs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from loopml.core import ValidationError
from loopml.data import _profile_columns
from loopml.data._diff import diff_profiles, psi
from loopml.data._profile import (
    ColumnProfile,
    DatasetProfile,
    Histogram,
    category_counts,
    histogram_counts,
    profile,
)


def _mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 500
    floats = rng.lognormal(0, 1, n)
    floats[::50] = np.nan
    return pd.DataFrame(
        {
            "amount": floats,
            "count": rng.integers(0, 5, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n, p=[0.5, 0.3, 0.15, 0.05]),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )


def _render(table: object) -> list[str]:
    console = Console(record=True, width=100)
    console.print(table)
    return console.export_text().splitlines()


# --- statistics ---------------------------------------------------------------------------


def test_profile_numeric_happy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    column = profile(pd.DataFrame({"x": values})).columns["x"]
    assert (column.kind, column.dtype, column.count, column.missing) == ("numeric", "double", 5, 0)
    assert (column.min, column.max, column.mean) == (1.0, 10.0, 4.0)
    assert column.std == pytest.approx(np.std(values, ddof=1))
    assert column.quantiles is not None
    assert column.quantiles["p50"] == 3.0
    assert column.quantiles["p25"] == 2.0
    assert column.quantiles["p95"] == pytest.approx(np.quantile(values, 0.95))


def test_profile_integers_are_numeric() -> None:
    column = profile(pd.DataFrame({"n": [3, 1, 2]})).columns["n"]
    assert (column.kind, column.dtype, column.min, column.max, column.mean) == (
        "numeric",
        "int64",
        1.0,
        3.0,
        2.0,
    )


def test_profile_missing_rate_counts_null_nan_and_infinity() -> None:
    table = pa.table({"x": pa.array([1.0, None, float("nan"), float("inf"), 5.0, 6.0])})
    column = profile(table).columns["x"]
    assert (column.count, column.missing) == (3, 3)
    assert column.missing_rate == 0.5
    assert (column.min, column.max) == (1.0, 6.0)


def test_profile_categorical_top_k_with_other_bucket() -> None:
    values = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]
    column = profile(pd.DataFrame({"s": values}), top_k=2).columns["s"]
    assert column.kind == "categorical"
    assert column.distinct == 4
    assert column.top_k == [("a", 5), ("b", 3)]
    assert column.other_count == 3
    assert column.missing == 1


def test_profile_categorical_ties_are_ordered_by_value() -> None:
    column = profile(pd.DataFrame({"s": ["z", "y", "x", "x"]})).columns["s"]
    assert column.top_k == [("x", 2), ("y", 1), ("z", 1)]


def test_profile_boolean_counts() -> None:
    column = profile(pa.table({"b": [True, True, False, None, True]})).columns["b"]
    assert (column.kind, column.distinct, column.other_count) == ("boolean", 2, 0)
    assert column.top_k == [("true", 3), ("false", 1)]
    assert column.missing_rate == 0.2


def test_profile_datetime_uses_epoch_seconds() -> None:
    when = pd.to_datetime(["2024-01-01", "2024-01-03", None])
    column = profile(pd.DataFrame({"t": when})).columns["t"]
    start = 1_704_067_200.0  # 2024-01-01T00:00:00Z
    assert column.kind == "datetime"
    assert (column.min, column.max, column.mean) == (start, start + 2 * 86_400, start + 86_400)
    assert column.std is None
    assert column.histogram is not None
    assert column.histogram.edges[0] == start


def test_profile_quantile_edges_balance_skewed_data() -> None:
    values = np.random.default_rng(1).lognormal(0, 2, 10_000)
    histogram = profile(pd.DataFrame({"x": values}), bins=10).columns["x"].histogram
    assert histogram is not None
    assert len(histogram.edges) == 11
    assert histogram.counts == [1000] * 10


def test_profile_repeated_value_merges_bins() -> None:
    values = [0.0] * 60 + list(np.linspace(1, 2, 40))
    histogram = profile(pd.DataFrame({"x": values}), bins=10).columns["x"].histogram
    assert histogram is not None
    assert len(histogram.counts) < 10
    assert histogram.counts[0] >= 60
    assert sum(histogram.counts) == 100


# --- edge cases ---------------------------------------------------------------------------


def test_profile_empty_table() -> None:
    prof = profile(pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())}))
    assert prof.row_count == 0
    x, s = prof.columns["x"], prof.columns["s"]
    assert (x.count, x.missing_rate, x.histogram, x.mean) == (0, 0.0, None, None)
    assert (s.distinct, s.top_k, s.other_count) == (0, [], 0)


def test_profile_constant_column_has_single_bin() -> None:
    column = profile(pd.DataFrame({"k": [7.0] * 5})).columns["k"]
    assert column.histogram == Histogram(edges=[7.0, 7.0], counts=[5])
    assert column.std == 0.0
    assert histogram_counts(column, np.array([1.0, 7.0, 9.0])) == [3]


def test_profile_all_null_column() -> None:
    table = pa.table({"x": pa.array([None, None], pa.float64()), "s": pa.array([None, None])})
    prof = profile(table)
    assert prof.columns["x"].missing_rate == 1.0
    assert prof.columns["x"].histogram is None
    assert prof.columns["s"].top_k == []
    json.dumps(prof.to_dict(), allow_nan=False)


def test_profile_single_value_has_no_std() -> None:
    column = profile(pd.DataFrame({"x": [2.5, None]})).columns["x"]
    assert (column.count, column.std, column.mean) == (1, None, 2.5)


# --- inputs -------------------------------------------------------------------------------


def test_profile_parquet_path_and_dataframe_are_equal(tmp_path: Path) -> None:
    frame = _mixed_frame()
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    assert profile(path) == profile(frame)
    assert profile(str(path)) == profile(pa.Table.from_pandas(frame, preserve_index=False))


def test_profile_list_and_glob_of_parquet_files(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [3.0]}), tmp_path / "b.parquet")
    by_list = profile([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    by_glob = profile(str(tmp_path / "*.parquet"))
    assert by_list == by_glob
    assert (by_list.row_count, by_list.columns["x"].max) == (3, 3.0)


def test_profile_sad_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        profile(tmp_path / "nope.parquet")


def test_profile_sad_glob_matches_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="matches no file"):
        profile(str(tmp_path / "*.parquet"))


def test_profile_sad_unsupported_source() -> None:
    with pytest.raises(ValidationError, match="got dict"):
        profile({"x": [1]})


def test_profile_sad_bins_below_one() -> None:
    with pytest.raises(ValidationError, match="bins must be an int >= 1"):
        profile(pd.DataFrame({"x": [1.0]}), bins=0)


def test_profile_sad_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match="cannot profile"):
        profile(path)


def test_profile_large_input_uses_sampled_quantiles_and_exact_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A size check: on DuckDB's path (columns over the numpy budget), above the
    exact-quantile limit edges are sampled, counts stay exact."""
    monkeypatch.setattr(_profile_columns, "COLUMN_VALUES_BUDGET", 0)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.exponential(2.0, 300_000), "k": rng.integers(0, 9, 300_000)})
    prof = profile(frame)
    assert not prof.exact_quantiles
    for name in ("x", "k"):
        column = prof.columns[name]
        assert column.histogram is not None
        assert histogram_counts(column, frame[name]) == column.histogram.counts
        assert column.histogram.total == 300_000
    assert prof.columns["x"].quantiles is not None
    assert prof.columns["x"].quantiles["p50"] == pytest.approx(2.0 * math.log(2), rel=0.03)


def test_profile_large_numeric_input_has_exact_quantiles() -> None:
    rng = np.random.default_rng(3)
    values = rng.exponential(2.0, 300_000)
    prof = profile(pd.DataFrame({"x": values}))
    assert prof.exact_quantiles
    column = prof.columns["x"]
    assert column.quantiles is not None and column.histogram is not None
    assert column.quantiles["p50"] == pytest.approx(float(np.quantile(values, 0.5)), rel=1e-12)
    assert histogram_counts(column, values) == column.histogram.counts


# --- persistence and display --------------------------------------------------------------


def test_profile_round_trips_through_json() -> None:
    prof = profile(_mixed_frame())
    text = json.dumps(prof.to_dict(), allow_nan=False)
    assert DatasetProfile.from_dict(json.loads(text)) == prof


def test_from_dict_sad_unknown_format_version() -> None:
    data = profile(pd.DataFrame({"x": [1.0]})).to_dict()
    data["format_version"] = 99
    with pytest.raises(ValidationError, match="format_version must be 1"):
        DatasetProfile.from_dict(data)


def test_from_dict_sad_malformed_column() -> None:
    data = profile(pd.DataFrame({"x": [1.0]})).to_dict()
    del data["columns"][0]["count"]
    with pytest.raises(ValidationError, match="column profile 'x' is malformed"):
        DatasetProfile.from_dict(data)


def test_profile_to_table_renders_in_100_columns() -> None:
    lines = _render(profile(_mixed_frame()).to_table())
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in lines)
    for expected in ("amount", "city", "paris", "2.0%", "2024-01-01", "timestamp[us]"):
        assert expected in text


# --- counting new values ------------------------------------------------------------------


def test_histogram_counts_on_reference_equals_stored_counts() -> None:
    frame = _mixed_frame()
    prof = profile(frame, bins=7)
    for name in ("amount", "count", "when"):
        column = prof.columns[name]
        assert column.histogram is not None
        assert histogram_counts(column, frame[name]) == column.histogram.counts


def test_histogram_counts_clamps_out_of_range() -> None:
    histogram = Histogram(edges=[0.0, 1.0, 2.0], counts=[1, 1])
    assert histogram_counts(histogram, np.array([-5.0, 0.0, 0.5, 1.0, 1.5, 2.0, 99.0])) == [4, 3]


def test_histogram_counts_skips_missing_values() -> None:
    histogram = Histogram(edges=[0.0, 1.0, 2.0], counts=[1, 1])
    values = pd.Series([np.nan, None, 0.5, float("inf")], dtype="float64")
    assert histogram_counts(histogram, values) == [1, 0]


def test_histogram_counts_accepts_numpy_pandas_and_arrow() -> None:
    histogram = Histogram(edges=[0.0, 1.0, 2.0], counts=[1, 1])
    expected = [1, 2]
    assert histogram_counts(histogram, np.array([0.5, 1.5, 1.7])) == expected
    assert histogram_counts(histogram, pd.Series([0.5, 1.5, 1.7])) == expected
    assert histogram_counts(histogram, pa.chunked_array([[0.5], [1.5, 1.7]])) == expected
    assert histogram_counts(histogram, pa.array([0, 2, 2], pa.int8())) == expected


def test_histogram_counts_sad_no_histogram() -> None:
    column = profile(pd.DataFrame({"s": ["a"]})).columns["s"]
    with pytest.raises(ValidationError, match="column 's' has no histogram"):
        histogram_counts(column, np.array([1.0]))


def test_histogram_counts_sad_text_values() -> None:
    with pytest.raises(ValidationError, match="numeric or datetime values"):
        histogram_counts(Histogram(edges=[0.0, 1.0], counts=[1]), pa.array(["a"]))


def test_category_counts_new_categories_fall_in_other() -> None:
    column = profile(pd.DataFrame({"s": ["a", "a", "b", "c"]}), top_k=2).columns["s"]
    counts, other = category_counts(column, pd.Series(["b", "b", "z", None, "c", "a"]))
    assert (counts, other) == ([1, 2], 2)


def test_category_counts_booleans_as_text() -> None:
    column = profile(pd.DataFrame({"b": [True, False, False]})).columns["b"]
    assert category_counts(column, np.array([True, True, False])) == ([1, 2], 0)


def test_category_counts_sad_numeric_reference() -> None:
    column = profile(pd.DataFrame({"x": [1.0]})).columns["x"]
    with pytest.raises(ValidationError, match="not categorical or boolean"):
        category_counts(column, ["a"])


# --- diffs --------------------------------------------------------------------------------


def test_diff_identical_profiles_psi_zero() -> None:
    prof = profile(_mixed_frame())
    diff = diff_profiles(prof, prof)
    assert not diff.changed
    assert all(c.psi == pytest.approx(0.0, abs=1e-12) for c in diff.columns.values())


def test_diff_same_distribution_new_sample_is_stable() -> None:
    rng = np.random.default_rng(11)
    old = profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    new = profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    value = diff_profiles(old, new).columns["x"].psi
    assert value is not None
    assert value < 0.02


def test_diff_detects_shifted_distribution() -> None:
    rng = np.random.default_rng(5)
    old = profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    new = profile(pd.DataFrame({"x": rng.normal(1, 1, 20_000)}))
    column = diff_profiles(old, new).columns["x"]
    assert column.psi is not None
    assert column.psi >= 0.2
    assert column.changed and not column.type_changed
    assert column.mean is not None
    assert column.mean[1] == pytest.approx(1.0, abs=0.05)


def test_diff_numeric_psi_is_close_to_exact_counts() -> None:
    rng = np.random.default_rng(9)
    old_values, new_values = rng.gamma(2.0, 1.0, 20_000), rng.gamma(2.6, 1.0, 20_000)
    old = profile(pd.DataFrame({"x": old_values}))
    estimate = diff_profiles(old, profile(pd.DataFrame({"x": new_values}))).columns["x"].psi
    reference = old.columns["x"]
    assert reference.histogram is not None
    exact = psi(reference.histogram.counts, histogram_counts(reference, new_values))
    assert estimate == pytest.approx(exact, rel=0.1)


def test_diff_detects_categorical_shift() -> None:
    old = profile(pd.DataFrame({"s": ["a"] * 80 + ["b"] * 20}))
    new = profile(pd.DataFrame({"s": ["a"] * 30 + ["b"] * 70}))
    column = diff_profiles(old, new).columns["s"]
    assert column.psi is not None
    assert column.psi >= 0.2
    assert column.mean is None


def test_diff_added_removed_and_type_changes() -> None:
    old = profile(pd.DataFrame({"keep": [1, 2, 3], "gone": ["a", "b", "c"]}))
    new = profile(pd.DataFrame({"keep": [1.0, 2.0, 3.0], "new": [True, False, True]}))
    diff = diff_profiles(old, new)
    assert (diff.added_columns, diff.removed_columns) == (["new"], ["gone"])
    assert diff.type_changes == {"keep": ("int64", "double")}
    assert diff.columns["keep"].changed
    assert diff.row_count == (3, 3)
    assert diff.changed_columns == ["keep"]


def test_diff_kind_change_has_no_psi() -> None:
    old = profile(pd.DataFrame({"x": [1, 2, 3]}))
    new = profile(pd.DataFrame({"x": ["1", "2", "3"]}))
    column = diff_profiles(old, new).columns["x"]
    assert (column.kind, column.psi, column.changed) == (("numeric", "categorical"), None, True)


def test_diff_to_dict_is_json() -> None:
    old = profile(pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}))
    new = profile(pd.DataFrame({"x": [None, None], "z": [1, 2]}))
    data = json.loads(json.dumps(diff_profiles(old, new).to_dict(), allow_nan=False))
    assert data["removed_columns"] == ["y"]
    assert data["columns"]["x"]["missing_rate"] == [0.0, 1.0]
    assert data["columns"]["x"]["psi"] is None


def test_diff_to_table_renders_in_100_columns() -> None:
    frame = _mixed_frame()
    shifted = frame.assign(amount=frame["amount"] * 3).drop(columns=["flag"])
    lines = _render(diff_profiles(profile(frame), profile(shifted)).to_table())
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in lines)
    assert "removed: flag" in text
    assert "shift" in text


def test_psi_sad_mismatched_bins() -> None:
    with pytest.raises(ValidationError, match="same bins"):
        psi([1, 2], [1, 2, 3])


def test_column_profile_from_dict_round_trip_keeps_tuples() -> None:
    column = profile(pd.DataFrame({"s": ["a", "b", "a"]})).columns["s"]
    rebuilt = ColumnProfile.from_dict(json.loads(json.dumps(column.to_dict())))
    assert rebuilt == column
    assert rebuilt.top_k == [("a", 2), ("b", 1)]
