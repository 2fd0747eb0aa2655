"""Drift statistics from counts against the exact scipy values on real samples.

These tests document the approximation error of computing KS and Wasserstein from a
stored profile's fine histogram (1,000 bins) instead of the raw reference values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopml.data import _profile_columns, profile
from loopml.monitoring import detect_drift

SAMPLES = {
    "normal_shift": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.15, 1.1, n)),
    "normal_same": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1, n)),
    "lognormal": (lambda r, n: r.lognormal(0, 1, n), lambda r, n: r.lognormal(0.1, 1, n)),
    "beyond_range": (lambda r, n: r.uniform(0, 1, n), lambda r, n: r.uniform(0.5, 1.5, n)),
    "exponential": (lambda r, n: r.exponential(2.0, n), lambda r, n: r.exponential(2.3, n)),
}


def _compare(kind: str, n_ref: int, n_cur: int, seed: int) -> tuple[dict[str, Any], Any, Any]:
    rng = np.random.default_rng(seed)
    make_ref, make_cur = SAMPLES[kind]
    x, y = make_ref(rng, n_ref), make_cur(rng, n_cur)
    result = detect_drift(pa.table({"x": x}), pa.table({"x": y}))
    return result.features["x"].statistics, x, y


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize(("n_ref", "n_cur", "seed"), [(300, 400, 1), (5_000, 3_000, 2)])
def test_ks_is_exact_below_the_fine_resolution(
    kind: str, n_ref: int, n_cur: int, seed: int
) -> None:
    found, x, y = _compare(kind, n_ref, n_cur, seed)
    exact = stats.ks_2samp(x, y)
    # never above the exact statistic, and short of it by at most about one fine bin's share
    assert found["ks_statistic"] <= exact.statistic + 1e-12
    assert exact.statistic - found["ks_statistic"] <= 0.004
    # the asymptotic p-value against scipy's (exact for these sizes): close on the scale
    # that decides drift
    assert abs(found["ks_p_value"] - exact.pvalue) <= 0.08


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize(("n_ref", "n_cur", "seed"), [(300, 400, 3), (5_000, 3_000, 4)])
def test_wasserstein_close_to_scipy(kind: str, n_ref: int, n_cur: int, seed: int) -> None:
    found, x, y = _compare(kind, n_ref, n_cur, seed)
    exact = stats.wasserstein_distance(x, y)
    # within 2% (10% for the heavy-tailed lognormal, whose few, wide tail bins hide
    # crossings of the two CDFs), and always within 1% of the reference's standard
    # deviation: a tenth of the default threshold on the normalised distance
    relative = 0.10 if kind == "lognormal" else 0.02
    assert found["wasserstein"] == pytest.approx(exact, rel=relative)
    assert abs(found["wasserstein"] - exact) <= 0.01 * np.std(x)
    assert found["wasserstein_normed"] == pytest.approx(found["wasserstein"] / np.std(x, ddof=1))


def test_large_reference_from_a_sample_stays_close(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # on DuckDB's path (columns over the numpy budget), above 200,000 rows the fine edges
    # come from a sample; counts stay exact
    monkeypatch.setattr(_profile_columns, "COLUMN_VALUES_BUDGET", 0)
    rng = np.random.default_rng(5)
    x, y = rng.normal(0, 1, 300_000), rng.normal(0.05, 1, 200_000)
    reference = profile(pa.table({"x": x}))
    assert not reference.exact_quantiles and reference.columns["x"].fine is not None
    assert reference.columns["x"].fine.total == 300_000
    found = detect_drift(reference, pa.table({"x": y})).features["x"].statistics
    exact_ks = stats.ks_2samp(x, y).statistic
    assert 0 <= exact_ks - found["ks_statistic"] <= 0.003
    assert found["wasserstein"] == pytest.approx(stats.wasserstein_distance(x, y), rel=0.01)


def test_large_reference_profiled_column_by_column_has_exact_edges() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(0, 1, 300_000), rng.normal(0.05, 1, 200_000)
    reference = profile(pa.table({"x": x}))
    assert reference.exact_quantiles and reference.columns["x"].fine is not None
    found = detect_drift(reference, pa.table({"x": y})).features["x"].statistics
    exact_ks = stats.ks_2samp(x, y).statistic
    assert 0 <= exact_ks - found["ks_statistic"] <= 0.003
    assert found["wasserstein"] == pytest.approx(stats.wasserstein_distance(x, y), rel=0.01)


def test_discrete_values_are_binned_alike_on_both_sides() -> None:
    rng = np.random.default_rng(6)
    x = rng.integers(0, 5, 2_000).astype(float)
    found = detect_drift(pa.table({"x": x}), pa.table({"x": rng.permutation(x)}))
    stats_ = found.features["x"].statistics
    assert stats_["ks_statistic"] == 0 and stats_["wasserstein"] == 0 and stats_["psi"] == 0
    y = rng.integers(0, 6, 2_000).astype(float)  # a new value above the range
    shifted = detect_drift(pa.table({"x": x}), pa.table({"x": y})).features["x"].statistics
    assert shifted["ks_statistic"] == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-9)
    # bin sums make the area exact: the CDFs of integers do not cross inside a bin
    assert shifted["wasserstein"] == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)


def test_categorical_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(7)
    labels = ["a", "b", "c", "d"]
    x = rng.choice(labels, 3_000, p=[0.4, 0.3, 0.2, 0.1])
    y = rng.choice([*labels, "new"], 2_000, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    found = detect_drift(pa.table({"c": x}), pa.table({"c": y})).features["c"]
    ref_counts = [int((x == v).sum()) for v in labels] + [0]
    cur_counts = [int((y == v).sum()) for v in labels] + [int((y == "new").sum())]
    chi2, p_value, _, _ = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    assert found.statistics["chisquare_statistic"] == pytest.approx(chi2, rel=1e-9)
    assert found.statistics["chisquare_p_value"] == pytest.approx(p_value, rel=1e-6, abs=1e-300)
    assert found.statistics["jensenshannon"] == pytest.approx(
        jensenshannon(ref_counts, cur_counts), rel=1e-9
    )
    assert found.method == "jensenshannon" and found.resolution == "categories"


def test_boolean_chisquare_is_the_two_proportion_test() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.random(800) < 0.3, rng.random(600) < 0.4
    found = detect_drift(pa.table({"b": x}), pa.table({"b": y})).features["b"]
    assert found.method == "chisquare"  # 800 reference values: a small sample
    p1, p2 = x.mean(), y.mean()
    pooled = (x.sum() + y.sum()) / (len(x) + len(y))
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / len(x) + 1 / len(y)))
    assert found.score == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)
    assert found.drifted
