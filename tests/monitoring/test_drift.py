"""The drift engine's API: sketches, windows, thresholds, inputs and reference profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.data import DataCatalog, DatasetProfile, profile
from loopml.monitoring import (
    DriftResult,
    DriftSketch,
    DriftThresholds,
    FeatureRule,
    compute_drift,
    detect_drift,
    reference_profile,
)


def frame(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "age": rng.normal(40 + shift * 10, 10, rows),
            "income": rng.lognormal(10 + shift, 0.5, rows),
            "visits": rng.poisson(3, rows),
            "plan": rng.choice(["free", "pro", "team"], rows, p=[0.6, 0.3, 0.1]),
            "active": rng.random(rows) < 0.7,
        }
    )


def same(a: object, b: object) -> bool:
    """Equal, floats up to rounding (sums taken in another order differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return a == b


@pytest.fixture(scope="module")
def reference() -> DatasetProfile:
    return profile(frame(5_000, seed=1))


def test_same_distribution_does_not_drift_and_a_shift_does(reference: DatasetProfile) -> None:
    calm = detect_drift(reference, frame(4_000, seed=2))
    assert not calm.drifted and calm.share_drifted == 0.0
    assert list(calm.features) == ["age", "income", "visits", "plan", "active"]
    assert calm.n_reference == 5_000 and calm.n_current == 4_000
    shifted = frame(4_000, seed=3, shift=0.5)
    drifted = detect_drift(reference, shifted)
    assert drifted.drifted_features == ["age", "income"]
    assert drifted.share_drifted == pytest.approx(2 / 5) and not drifted.drifted
    age = drifted.features["age"]
    assert age.method == "wasserstein" and age.score == age.statistics["wasserstein_normed"]
    assert age.score is not None and age.score >= 0.1 and age.resolution == "fine"
    assert set(age.statistics) == {
        "psi",
        "ks_statistic",
        "ks_p_value",
        "wasserstein",
        "wasserstein_normed",
    }
    tighter = DriftThresholds(share=0.4)
    assert detect_drift(reference, shifted, tighter).drifted


def test_windows_are_incremental_and_merge(reference: DatasetProfile) -> None:
    data = frame(3_000, seed=4, shift=0.2)
    whole = DriftSketch.empty(reference).update(data)
    batched = DriftSketch.empty(reference)
    for batch in data.to_batches(max_chunksize=700):
        batched.update(batch)
    assert same(batched.to_dict(), whole.to_dict())
    first = DriftSketch.empty(reference).update(data.slice(0, 1_000))
    second = DriftSketch.empty(reference).update(data.slice(1_000))
    merged = first.merge(second)
    assert merged.rows == 3_000 and first.rows == 1_000  # merge makes a new sketch
    stored = DriftSketch.from_dict(json.loads(json.dumps(merged.to_dict(), allow_nan=False)))
    expected = compute_drift(reference, whole).to_dict()
    assert same(compute_drift(reference, stored).to_dict(), expected)
    assert same(compute_drift(reference, merged).to_dict(), expected)


def test_sketches_of_other_references_do_not_mix(reference: DatasetProfile) -> None:
    other = profile(frame(2_000, seed=9))
    mine = DriftSketch.empty(reference).update(frame(100, seed=5))
    theirs = DriftSketch.empty(other).update(frame(100, seed=5))
    with pytest.raises(ValidationError, match="different bins"):
        mine.merge(theirs)
    with pytest.raises(ValidationError, match="other bins"):
        compute_drift(reference, theirs)
    with pytest.raises(ValidationError, match="different features"):
        mine.merge(DriftSketch.empty(reference, ["age"]))


def test_missing_values_are_counted_apart(reference: DatasetProfile) -> None:
    data = frame(1_000, seed=6)
    age = data["age"].to_numpy().copy()
    age[:200] = np.nan
    ages = pa.array(age, mask=np.arange(1_000) < 100)  # 100 nulls, 100 NaN
    holed = data.set_column(0, "age", ages).drop_columns(["plan"])
    result = detect_drift(reference, holed)
    assert result.features["age"].missing_current == pytest.approx(0.2)
    assert result.features["age"].n_current == 800
    assert not result.features["age"].drifted  # the present values did not move
    plan = result.features["plan"]  # absent from the data: all missing, not evaluated
    assert plan.missing_current == 1.0 and plan.score is None and not plan.drifted
    assert result.share_drifted == 0.0 and len(result.features) == 5


def test_per_feature_rules_and_global_methods(reference: DatasetProfile) -> None:
    data = frame(4_000, seed=7, shift=0.05)
    rules = DriftThresholds(
        numeric_method="psi",
        features={
            "age": FeatureRule(method="ks", threshold=0.2),
            "plan": FeatureRule(ignore=True),
            "income": FeatureRule(threshold=0.001),
        },
    )
    result = detect_drift(reference, data, rules)
    assert "plan" not in result.features and "ignored" in result.skipped["plan"]
    age = result.features["age"]
    assert (age.method, age.threshold) == ("ks", 0.2) and age.score == age.statistics["ks_p_value"]
    income = result.features["income"]
    assert income.method == "psi" and income.threshold == 0.001 and income.drifted
    assert result.features["active"].method == "jensenshannon"
    again = DriftThresholds.from_dict(json.loads(json.dumps(rules.to_dict())))
    assert again == rules
    with pytest.raises(ValidationError, match="must be one of"):
        detect_drift(reference, data, DriftThresholds(features={"plan": FeatureRule("ks")}))
    with pytest.raises(ValidationError, match="numeric_method"):
        DriftThresholds(numeric_method="chisquare")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"within \(0, 1\)"):
        DriftThresholds(ks_p_value=5)
    with pytest.raises(ValidationError, match="unknown drift threshold keys"):
        DriftThresholds.from_dict({"psi_threshold": 0.3})


def test_results_round_trip_as_strict_json(reference: DatasetProfile) -> None:
    result = detect_drift(reference, frame(500, seed=8).drop_columns(["age"]))
    text = json.dumps(result.to_dict(), allow_nan=False)
    again = DriftResult.from_dict(json.loads(text))
    assert again == result
    with pytest.raises(ValidationError, match="malformed"):
        DriftResult.from_dict({"features": []})


def test_inputs_parquet_in_batches_dataframe_and_raw_reference(tmp_path: Path) -> None:
    reference_data, current = frame(3_000, seed=10), frame(2_500, seed=11, shift=0.3)
    parts = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    pq.write_table(current.slice(0, 1_000), parts[0], row_group_size=300)
    pq.write_table(current.slice(1_000), parts[1], row_group_size=300)
    expected = detect_drift(profile(reference_data), current).to_dict()
    from_files = detect_drift(profile(reference_data), parts, batch_rows=256).to_dict()
    # row groups larger than 4 batches are streamed page by page instead
    from_pages = detect_drift(profile(reference_data), parts, batch_rows=50).to_dict()
    from_glob = detect_drift(profile(reference_data), str(tmp_path / "*.parquet")).to_dict()
    from_pandas = detect_drift(profile(reference_data), current.to_pandas()).to_dict()
    from_raw = detect_drift(reference_data, current).to_dict()  # profiles first
    for other in (from_files, from_pages, from_glob, from_pandas, from_raw):
        assert same(other, expected)
    with pytest.raises(ValidationError, match="does not exist"):
        detect_drift(profile(reference_data), tmp_path / "missing.parquet")
    with pytest.raises(ValidationError, match="not in the reference"):
        detect_drift(profile(reference_data), current, columns=["age", "nope"])


def test_text_in_a_numeric_feature_is_refused(reference: DatasetProfile) -> None:
    bad = pa.table({"age": ["old", "young"]})
    with pytest.raises(ValidationError, match="'age' is numeric in the reference"):
        DriftSketch.empty(reference, ["age"]).update(bad)
    numbers_as_text = pa.table({"age": ["41.5", "39"]})  # JSON inputs may carry these
    assert DriftSketch.empty(reference, ["age"]).update(numbers_as_text).rows == 2


def test_datetime_columns_only_when_named() -> None:
    times = pd.date_range("2026-01-01", periods=2_000, freq="min", tz="UTC")
    ref = profile(pd.DataFrame({"ts": times, "x": np.arange(2_000.0)}))
    later = pd.DataFrame({"ts": times + pd.Timedelta(days=2), "x": np.arange(2_000.0)})
    default = detect_drift(ref, later)
    assert list(default.features) == ["x"] and "datetime" in default.skipped["ts"]
    named = detect_drift(ref, later, columns=["ts"]).features["ts"]
    assert named.drifted and named.statistics["ks_statistic"] == 1.0
    assert named.statistics["wasserstein"] == pytest.approx(2 * 86_400.0)


def test_profiles_stored_before_fine_histograms_still_work(reference: DatasetProfile) -> None:
    old = reference.to_dict()
    old.pop("fine_bins")
    for column in old["columns"]:
        column.pop("fine")
    legacy = DatasetProfile.from_dict(old)
    assert legacy.fine_bins == 0 and legacy.columns["age"].fine is None
    result = detect_drift(legacy, frame(3_000, seed=12, shift=0.5))
    age = result.features["age"]
    assert age.resolution == "coarse" and age.drifted
    exact = detect_drift(reference, frame(3_000, seed=12, shift=0.5)).features["age"]
    # 20 coarse bins, CDFs linear within each: a rougher estimate, still the right verdict
    coarse, fine = age.statistics["wasserstein"], exact.statistics["wasserstein"]
    assert coarse == pytest.approx(fine, rel=0.2)


def test_reference_profile_is_the_registry_copy(settings: Settings) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from loopml.registry import ModelRegistry
    from loopml.training import fit

    data = frame(600, seed=13).to_pandas()
    data["label"] = (data["age"] > 40).astype(int)
    data = data[["age", "income", "visits", "label"]]
    with DataCatalog(settings) as catalog:
        version = catalog.ingest(data, name="customers").version
        stored = catalog.profile(version.ref)
    run = fit(
        DecisionTreeClassifier(max_depth=2), version.ref, target="label", settings=settings, cv=2
    )
    with ModelRegistry(settings) as registry:
        registry.register("churn", run_id=run.run_id)
    found = reference_profile(settings, "churn@1")
    assert found == stored and found.columns["age"].fine is not None
    result = detect_drift(found, data.assign(age=data["age"] + 15))
    assert result.drifted_features == ["age"] and "label" in result.features
    with pytest.raises(NotFoundError):
        reference_profile(settings, "churn@7")
