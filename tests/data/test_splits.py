"""Deterministic dataset splits: sizes, reproducibility, integrity and validation."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopml.core import ValidationError
from loopml.data._splits import SplitSpec, split_frames, split_indices


def _frame(rows: int = 1000) -> pd.DataFrame:
    positions = np.arange(rows)
    return pd.DataFrame(
        {
            "x": positions,
            "label": np.where(positions % 10 < 7, "a", np.where(positions % 10 < 9, "b", "c")),
            "customer": positions // 4,
            "ts": pd.date_range("2013-01-01", periods=rows, freq="h"),
        }
    )


def _golden_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": range(10),
            "label": list("aabbbccccc"),
            "g": list("pqrstpqrst"),
            "ts": pd.date_range("2013-02-26", periods=10, freq="D"),
        }
    )


def _as_lists(parts: dict[str, np.ndarray[Any, Any]]) -> dict[str, list[int]]:
    return {name: positions.tolist() for name, positions in parts.items()}


def _assert_partition(parts: dict[str, np.ndarray[Any, Any]], rows: int) -> None:
    for positions in parts.values():
        assert positions.dtype == np.int64
        assert (np.diff(positions) > 0).all()
    together = np.sort(np.concatenate(list(parts.values())))
    assert together.tolist() == list(range(rows))


# --- random -----------------------------------------------------------------


def test_random_split_happy_sizes() -> None:
    parts = split_indices(_frame(), SplitSpec(ratios=(0.7, 0.15, 0.15), seed=42))
    assert {name: len(p) for name, p in parts.items()} == {
        "train": 700,
        "validation": 150,
        "test": 150,
    }


def test_random_split_happy_every_row_in_exactly_one_sorted_part() -> None:
    _assert_partition(split_indices(_frame(), SplitSpec(seed=3)), 1000)


def test_random_split_happy_largest_remainder_rounding() -> None:
    # 10 rows at 70/15/15 are quotas 7, 1.5, 1.5: the spare row goes to the earlier tie.
    parts = split_indices(_frame(10), SplitSpec())
    assert [len(p) for p in parts.values()] == [7, 2, 1]


def test_random_split_happy_zero_ratio_part_is_empty() -> None:
    parts = split_indices(_frame(50), SplitSpec(ratios=(0.5, 0.0, 0.5)))
    assert [len(p) for p in parts.values()] == [25, 0, 25]


def test_random_split_happy_empty_data() -> None:
    parts = split_indices(_frame(0), SplitSpec())
    assert [len(p) for p in parts.values()] == [0, 0, 0]


def test_random_split_happy_same_spec_same_indices() -> None:
    first = split_indices(_frame(), SplitSpec(seed=5))
    second = split_indices(_frame(), SplitSpec(seed=5))
    assert _as_lists(first) == _as_lists(second)


def test_random_split_happy_other_seed_other_indices() -> None:
    first = split_indices(_frame(), SplitSpec(seed=5))
    second = split_indices(_frame(), SplitSpec(seed=6))
    assert first["train"].tolist() != second["train"].tolist()


def test_random_split_happy_ignores_column_values() -> None:
    frame = _frame(100)
    changed = frame.assign(x=frame["x"] * 7, label="z")
    spec = SplitSpec(seed=9)
    assert _as_lists(split_indices(frame, spec)) == _as_lists(split_indices(changed, spec))


# --- stratified ---------------------------------------------------------------


def test_stratified_split_happy_exact_class_proportions() -> None:
    frame = _frame()  # classes a, b, c hold 700, 200 and 100 rows
    spec = SplitSpec(
        kind="stratified", column="label", ratios=(0.8, 0.2), names=("train", "test"), seed=1
    )
    parts = split_indices(frame, spec)
    counts = {
        name: frame["label"].iloc[positions].value_counts().to_dict()
        for name, positions in parts.items()
    }
    assert counts == {"train": {"a": 560, "b": 160, "c": 80}, "test": {"a": 140, "b": 40, "c": 20}}


def test_stratified_split_happy_rounds_each_class_by_largest_remainder() -> None:
    frame = pd.DataFrame({"label": ["a"] * 3 + ["b"] * 5})  # 0.6 * 3 = 1.8, 0.6 * 5 = 3
    spec = SplitSpec(kind="stratified", column="label", ratios=(0.6, 0.4))
    parts = split_indices(frame, spec)
    train = frame["label"].iloc[parts["train"]].value_counts().to_dict()
    assert train == {"a": 2, "b": 3}


def test_stratified_split_happy_nulls_form_their_own_class() -> None:
    labels = pd.Series(["a"] * 10 + [None] * 10, dtype=object)
    frame = pd.DataFrame({"label": labels})
    spec = SplitSpec(kind="stratified", column="label", ratios=(0.5, 0.5))
    parts = split_indices(frame, spec)
    train = frame["label"].iloc[parts["train"]]
    assert int(train.isna().sum()) == 5
    assert int((train == "a").sum()) == 5


def test_stratified_split_sad_missing_column() -> None:
    spec = SplitSpec(kind="stratified", column="target", ratios=(0.8, 0.2))
    with pytest.raises(ValidationError, match=r"column 'target' is not in the data"):
        split_indices(_frame(10), spec)


# --- group --------------------------------------------------------------------


def test_group_split_happy_no_group_in_two_parts() -> None:
    frame = _frame()
    parts = split_indices(frame, SplitSpec(kind="group", column="customer", seed=7))
    groups = [set(frame["customer"].iloc[positions]) for positions in parts.values()]
    assert sum(len(g) for g in groups) == len(set().union(*groups)) == 250
    _assert_partition(parts, 1000)


def test_group_split_happy_new_groups_do_not_move_existing_rows() -> None:
    frame = _frame()
    spec = SplitSpec(kind="group", column="customer", seed=7)
    before = split_indices(frame, spec)
    extra = pd.DataFrame({"customer": np.arange(10_000, 10_400)})
    grown = pd.concat([frame[["customer"]], extra], ignore_index=True)
    after = split_indices(grown, spec)
    for name, positions in before.items():
        assert after[name][after[name] < 1000].tolist() == positions.tolist()


def test_group_split_happy_row_order_does_not_matter() -> None:
    frame = _frame()
    spec = SplitSpec(kind="group", column="customer", seed=7)
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    original = {name: sorted(frame["x"].iloc[p]) for name, p in split_indices(frame, spec).items()}
    reordered = {
        name: sorted(shuffled["x"].iloc[p]) for name, p in split_indices(shuffled, spec).items()
    }
    assert original == reordered


def test_group_split_happy_row_shares_approximate_ratios() -> None:
    frame = pd.DataFrame({"customer": np.arange(20_000) // 4})  # 5,000 groups of 4 rows
    parts = split_indices(frame, SplitSpec(kind="group", column="customer", seed=1))
    shares = [len(p) / 20_000 for p in parts.values()]
    assert shares == pytest.approx([0.7, 0.15, 0.15], abs=0.02)


def test_group_split_happy_other_seed_other_assignment() -> None:
    frame = _frame()
    first = split_indices(frame, SplitSpec(kind="group", column="customer", seed=1))
    second = split_indices(frame, SplitSpec(kind="group", column="customer", seed=2))
    assert first["train"].tolist() != second["train"].tolist()


def test_group_split_happy_int_and_float_ids_agree() -> None:
    ints = pd.DataFrame({"customer": np.arange(200)})
    floats = pd.DataFrame({"customer": np.arange(200).astype(float)})
    spec = SplitSpec(kind="group", column="customer", seed=3)
    assert _as_lists(split_indices(ints, spec)) == _as_lists(split_indices(floats, spec))


def test_group_split_happy_equal_values_ignore_first_seen_type() -> None:
    # pandas merges True, 1 and 1.0 into one group, keeping whichever came first.
    spec = SplitSpec(kind="group", column="g", ratios=(0.5, 0.5), seed=11)
    firsts = [pd.Series([v, 1, True, 1.0], dtype=object) for v in (True, 1, 1.0)]
    results = [_as_lists(split_indices(pd.DataFrame({"g": s}), spec)) for s in firsts]
    assert results[0] == results[1] == results[2]


def test_group_split_happy_nulls_form_one_group() -> None:
    frame = pd.DataFrame({"g": pd.Series([None, np.nan, None, np.nan] * 25, dtype=object)})
    parts = split_indices(frame, SplitSpec(kind="group", column="g"))
    assert sorted(len(p) for p in parts.values()) == [0, 0, 100]


def test_group_split_sad_missing_column() -> None:
    spec = SplitSpec(kind="group", column="account")
    with pytest.raises(ValidationError, match=r"column 'account' is not in the data"):
        split_indices(_frame(10), spec)


def test_group_split_sad_unsupported_value_type() -> None:
    frame = pd.DataFrame({"g": pd.Series([object(), object()], dtype=object)})
    with pytest.raises(ValidationError, match=r"column 'g' holds a object value"):
        split_indices(frame, SplitSpec(kind="group", column="g"))


# --- time ---------------------------------------------------------------------


def test_time_split_happy_row_at_cut_goes_to_later_part() -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2013-02-28 23:59:59", "2013-03-01 00:00:00", "2013-03-01 00:00:01"]
            )
        }
    )
    parts = split_indices(frame, SplitSpec(kind="time", column="ts", cuts=("2013-03-01",)))
    assert _as_lists(parts) == {"train": [0], "test": [1, 2]}


def test_time_split_happy_two_cuts_make_three_parts() -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2013-01-01", periods=6, freq="MS")})
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-05-01"))
    assert _as_lists(split_indices(frame, spec)) == {
        "train": [0, 1],
        "validation": [2, 3],
        "test": [4, 5],
    }


def test_time_split_happy_ignores_row_order() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2013-04-01", "2013-01-01", "2013-03-01"])})
    parts = split_indices(frame, SplitSpec(kind="time", column="ts", cuts=("2013-03-01",)))
    assert _as_lists(parts) == {"train": [1], "test": [0, 2]}


def test_time_split_happy_numeric_column_with_numeric_cuts() -> None:
    frame = pd.DataFrame({"epoch": [5, 10, 15, 20]})
    parts = split_indices(frame, SplitSpec(kind="time", column="epoch", cuts=(10, 20)))
    assert _as_lists(parts) == {"train": [0], "validation": [1, 2], "test": [3]}


def test_time_split_happy_timezone_aware_column_with_offset_cut() -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2013-02-27", periods=4, freq="D", tz="UTC")})
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01T01:00:00+01:00",))
    assert _as_lists(split_indices(frame, spec)) == {"train": [0, 1], "test": [2, 3]}


def test_time_split_sad_naive_cut_on_timezone_aware_column() -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2013-02-27", periods=4, freq="D", tz="UTC")})
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01",))
    with pytest.raises(ValidationError, match=r"no timezone but column 'ts' is timezone-aware"):
        split_indices(frame, spec)


def test_time_split_sad_aware_cut_on_naive_column() -> None:
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01T00:00:00+00:00",))
    with pytest.raises(ValidationError, match=r"has a timezone but column 'ts' is naive"):
        split_indices(_frame(10), spec)


def test_time_split_sad_null_timestamps_counted() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2013-01-01", None, "2013-05-01", None])})
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01",))
    with pytest.raises(ValidationError, match=r"column 'ts' has 2 null value\(s\)"):
        split_indices(frame, spec)


def test_time_split_sad_string_column() -> None:
    frame = pd.DataFrame({"ts": ["2013-01-01", "2013-05-01"]})
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01",))
    with pytest.raises(ValidationError, match=r"column 'ts' must hold timestamps or numbers"):
        split_indices(frame, spec)


def test_time_split_sad_number_cut_on_timestamp_column() -> None:
    spec = SplitSpec(kind="time", column="ts", cuts=(5,))
    with pytest.raises(ValidationError, match=r"cuts entry 5 is a number but column 'ts'"):
        split_indices(_frame(10), spec)


def test_time_split_sad_timestamp_cut_on_numeric_column() -> None:
    spec = SplitSpec(kind="time", column="x", cuts=("2013-03-01",))
    with pytest.raises(ValidationError, match=r"cuts are timestamps but column 'x' holds numbers"):
        split_indices(_frame(10), spec)


# --- the spec -----------------------------------------------------------------


def test_spec_happy_defaults() -> None:
    spec = SplitSpec()
    assert (spec.kind, spec.ratios, spec.names, spec.seed) == (
        "random",
        (0.7, 0.15, 0.15),
        ("train", "validation", "test"),
        0,
    )


def test_spec_happy_default_names_follow_part_count() -> None:
    assert SplitSpec(ratios=(0.8, 0.2)).names == ("train", "test")
    assert SplitSpec(kind="time", column="ts", cuts=("2013-03-01",)).names == ("train", "test")


ROUND_TRIP_SPECS = [
    SplitSpec(),
    SplitSpec(kind="random", ratios=(0.6, 0.2, 0.2), seed=42),
    SplitSpec(kind="stratified", column="label", ratios=(0.8, 0.2), names=("fit", "hold")),
    SplitSpec(kind="group", column="customer_id", seed=7),
    SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-06-01")),
    SplitSpec(kind="time", column="epoch", cuts=(10, 20.5)),
]


@pytest.mark.parametrize("spec", ROUND_TRIP_SPECS, ids=lambda s: s.kind)
def test_spec_happy_dict_round_trip_through_json(spec: SplitSpec) -> None:
    restored = SplitSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert restored == spec
    assert restored.fingerprint() == spec.fingerprint()


def test_spec_happy_to_dict_shape() -> None:
    assert SplitSpec(kind="group", column="c", seed=7).to_dict() == {
        "version": 1,
        "kind": "group",
        "ratios": [0.7, 0.15, 0.15],
        "names": ["train", "validation", "test"],
        "seed": 7,
        "column": "c",
        "cuts": None,
    }


def test_spec_happy_fingerprint_stable_across_instances() -> None:
    first = SplitSpec(kind="group", column="customer_id", seed=7)
    second = SplitSpec(kind="group", column="customer_id", seed=7)
    assert first.fingerprint() == second.fingerprint()
    assert first.fingerprint().startswith("blake3:")
    assert len(first.fingerprint()) == len("blake3:") + 64


def test_spec_happy_fingerprint_pinned() -> None:
    assert SplitSpec().fingerprint() == SplitSpec.from_dict({}).fingerprint()
    assert SplitSpec().fingerprint() == (
        "blake3:58f581802496c75d68f1d42916388ed93655181ca1adc31b9007c9bf7c501282"
    )


def test_spec_happy_whole_number_ratios_equal_float_ratios() -> None:
    assert SplitSpec(ratios=(1, 0)) == SplitSpec(ratios=(1.0, 0.0))
    assert SplitSpec(ratios=(1, 0)).fingerprint() == SplitSpec(ratios=(1.0, 0.0)).fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "stratified"},
        {"ratios": (0.8, 0.1, 0.1)},
        {"names": ("a", "b", "c")},
        {"seed": 1},
        {"column": "label"},
        {"cuts": ("2013-03-01", "2013-04-01")},
    ],
    ids=lambda change: next(iter(change)),
)
def test_spec_happy_fingerprint_changes_with_each_field(change: dict[str, Any]) -> None:
    base = SplitSpec()
    assert dataclasses.replace(base, **change).fingerprint() != base.fingerprint()


def test_spec_sad_fingerprint_of_nan_ratio() -> None:
    with pytest.raises(ValidationError, match=r"not JSON-able"):
        SplitSpec(ratios=(float("nan"), 1.0)).fingerprint()


def test_from_dict_sad_unknown_key() -> None:
    with pytest.raises(ValidationError, match=r"unknown keys \['ratio'\]"):
        SplitSpec.from_dict({"kind": "random", "ratio": [0.5, 0.5]})


def test_from_dict_sad_other_version() -> None:
    with pytest.raises(ValidationError, match=r"version must be 1; got 2"):
        SplitSpec.from_dict({**SplitSpec().to_dict(), "version": 2})


def test_from_dict_sad_not_a_mapping() -> None:
    with pytest.raises(ValidationError, match=r"expects a mapping; got list"):
        SplitSpec.from_dict([("kind", "random")])  # type: ignore[arg-type]


CHECK_ERRORS = [
    ("unknown_kind", SplitSpec(kind="kfold"), r"kind must be one of .*got 'kfold'"),
    ("ratios_sum", SplitSpec(ratios=(0.7, 0.2, 0.2)), r"ratios must sum to 1 .*sums to 1\.1"),
    ("ratios_negative", SplitSpec(ratios=(1.2, -0.2)), r"ratios must be finite numbers >= 0"),
    ("ratios_one_part", SplitSpec(ratios=(1.0,), names=("all",)), r"ratios must be a tuple of"),
    (
        "names_length",
        SplitSpec(ratios=(0.8, 0.2), names=("a", "b", "c")),
        r"names has 3 entries but the ratios give 2 parts",
    ),
    ("names_duplicate", SplitSpec(names=("a", "b", "a")), r"names must be unique; 'a' appears"),
    ("names_empty", SplitSpec(names=("a", "", "c")), r"names must be a tuple of non-empty"),
    (
        "names_missing",
        SplitSpec(ratios=(0.25, 0.25, 0.25, 0.25)),
        r"names is required for a split into 4 parts",
    ),
    ("seed_negative", SplitSpec(seed=-1), r"seed must be an int >= 0; got -1"),
    ("column_on_random", SplitSpec(column="label"), r"column is not used by kind 'random'"),
    ("column_missing", SplitSpec(kind="group"), r"column must name a column for kind 'group'"),
    (
        "cuts_on_random",
        SplitSpec(cuts=("2013-01-01",)),
        r"cuts is only used by kind 'time'",
    ),
    ("cuts_missing", SplitSpec(kind="time", column="ts"), r"cuts must be a non-empty tuple"),
    (
        "cuts_not_increasing",
        SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-02-01")),
        r"cuts must be strictly increasing; cut '2013-02-01' is not after '2013-03-01'",
    ),
    (
        "cuts_equal",
        SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-03-01")),
        r"cuts must be strictly increasing",
    ),
    (
        "cuts_count",
        SplitSpec(kind="time", column="ts", cuts=("2013-03-01",), names=("a", "b", "c")),
        r"names has 3 entries but the 1 cuts make 2 parts",
    ),
    (
        "cuts_unparseable",
        SplitSpec(kind="time", column="ts", cuts=("soon",)),
        r"cuts entry 'soon' is not an ISO timestamp",
    ),
    (
        "cuts_relative",
        SplitSpec(kind="time", column="ts", cuts=("now",)),
        r"cuts must be fixed instants; got the relative time 'now'",
    ),
    (
        "cuts_mixed",
        SplitSpec(kind="time", column="ts", cuts=("2013-03-01", 5)),
        r"cuts mixes timestamps and numbers",
    ),
    (
        "cuts_mixed_timezones",
        SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-04-01T00:00:00+00:00")),
        r"cuts mixes timezone-aware and naive",
    ),
]


@pytest.mark.parametrize(
    ("spec", "message"), [c[1:] for c in CHECK_ERRORS], ids=[c[0] for c in CHECK_ERRORS]
)
def test_spec_check_sad(spec: SplitSpec, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec.check(["label", "ts", "x"])


def test_spec_check_sad_missing_column_lists_available() -> None:
    spec = SplitSpec(kind="group", column="customer_id")
    with pytest.raises(ValidationError, match=r"'customer_id' is not in the data; .*\['a', 'b'\]"):
        spec.check(["a", "b"])


def test_spec_check_sad_duplicate_column() -> None:
    spec = SplitSpec(kind="group", column="a")
    with pytest.raises(ValidationError, match=r"column 'a' appears 2 times"):
        spec.check(["a", "a"])


def test_spec_check_happy_without_columns_skips_column_lookup() -> None:
    SplitSpec(kind="group", column="anything").check()


# --- inputs and outputs -------------------------------------------------------

KIND_SPECS = [
    SplitSpec(seed=4),
    SplitSpec(kind="stratified", column="label", ratios=(0.8, 0.2), seed=4),
    SplitSpec(kind="group", column="customer", seed=4),
    SplitSpec(kind="time", column="ts", cuts=("2013-01-20", "2013-02-01")),
]


@pytest.mark.parametrize("spec", KIND_SPECS, ids=lambda s: s.kind)
def test_split_indices_happy_pyarrow_table_equals_dataframe(spec: SplitSpec) -> None:
    frame = _frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert _as_lists(split_indices(table, spec)) == _as_lists(split_indices(frame, spec))


@pytest.mark.parametrize("spec", KIND_SPECS, ids=lambda s: s.kind)
def test_split_indices_happy_arrow_backed_dataframe_equals_numpy_backed(spec: SplitSpec) -> None:
    frame = _frame()
    arrow_backed = frame.convert_dtypes(dtype_backend="pyarrow")
    assert _as_lists(split_indices(arrow_backed, spec)) == _as_lists(split_indices(frame, spec))


def test_split_indices_happy_pyarrow_date_column_time_split() -> None:
    table = pa.table({"d": pa.array([0, 15_767, 15_765, 20_000], pa.date32())})  # 15765: 2013-03-01
    spec = SplitSpec(kind="time", column="d", cuts=("2013-03-01",))
    expected = {"train": [0], "test": [1, 2, 3]}
    assert _as_lists(split_indices(table, spec)) == expected
    assert _as_lists(split_indices(table.to_pandas(), spec)) == expected


def test_split_indices_happy_pyarrow_integer_ids_with_nulls_group_split() -> None:
    ids = pa.array([2**60 + 1, None, 2**60 + 1, 7])
    spec = SplitSpec(kind="group", column="g", ratios=(0.5, 0.5), seed=2)
    parts = split_indices(pa.table({"g": ids}), spec)
    together = [name for name, p in parts.items() for position in p if position in (0, 2)]
    assert len(set(together)) == 1


def test_split_indices_sad_not_a_table() -> None:
    with pytest.raises(ValidationError, match=r"DataFrame or pyarrow Table; got dict"):
        split_indices({"x": [1, 2]}, SplitSpec())


def test_split_indices_sad_checks_spec() -> None:
    with pytest.raises(ValidationError, match=r"ratios must sum to 1"):
        split_indices(_frame(10), SplitSpec(ratios=(0.5, 0.4)))


def test_split_frames_happy_rows_match_indices() -> None:
    frame = _frame(100)
    spec = SplitSpec(kind="group", column="customer", seed=2)
    frames = split_frames(frame, spec)
    for name, positions in split_indices(frame, spec).items():
        pd.testing.assert_frame_equal(frames[name], frame.iloc[positions])


def test_split_frames_sad_pyarrow_table() -> None:
    table = pa.Table.from_pandas(_frame(10))
    with pytest.raises(ValidationError, match=r"expects a pandas DataFrame; got Table"):
        split_frames(table, SplitSpec())


# --- determinism ----------------------------------------------------------------

_CHILD = """
import json, pandas as pd
from loopml.data._splits import SplitSpec, split_indices
frame = pd.DataFrame({"g": [f"customer-{i}" for i in range(300)]})
out = {}
for spec in (SplitSpec(seed=8), SplitSpec(kind="group", column="g", seed=8)):
    out[spec.kind] = {k: v.tolist() for k, v in split_indices(frame, spec).items()}
print(json.dumps(out))
"""


def test_split_happy_same_result_under_any_hash_seed() -> None:
    runs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1]


def test_random_split_happy_golden() -> None:
    parts = split_indices(_golden_frame(), SplitSpec(seed=42))
    assert _as_lists(parts) == {"train": [0, 1, 3, 4, 6, 8, 9], "validation": [2, 7], "test": [5]}


def test_stratified_split_happy_golden() -> None:
    spec = SplitSpec(kind="stratified", column="label", ratios=(0.6, 0.4), seed=3)
    parts = split_indices(_golden_frame(), spec)
    assert _as_lists(parts) == {"train": [0, 3, 4, 5, 7, 9], "test": [1, 2, 6, 8]}


def test_group_split_happy_golden() -> None:
    parts = split_indices(_golden_frame(), SplitSpec(kind="group", column="g", seed=7))
    assert _as_lists(parts) == {
        "train": [0, 1, 3, 5, 6, 8],
        "validation": [4, 9],
        "test": [2, 7],
    }


def test_time_split_happy_golden() -> None:
    spec = SplitSpec(kind="time", column="ts", cuts=("2013-03-01", "2013-03-04"))
    parts = split_indices(_golden_frame(), spec)
    assert _as_lists(parts) == {
        "train": [0, 1, 2],
        "validation": [3, 4, 5],
        "test": [6, 7, 8, 9],
    }
