"""Drift on the windows a monitor keeps: a window that just began does not decide it,
the prediction reference is found however late it comes, and /metrics shows the
scheduled window spec's report only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import Settings, ValidationError
from loopml.data import profile
from loopml.monitoring import (
    DriftThresholds,
    FeatureRule,
    Monitor,
    MonitoringCollector,
    detect_drift,
    run_monitoring,
)
from tests.monitoring.monitored import DEPLOYMENT, HOUR, T0, World, features, make_world


@pytest.fixture
def world(settings: Settings) -> World:
    return make_world(settings)


def _drift(samples: list[object]) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("feature", "") + s.labels.get("statistic", "")): s.value  # type: ignore[attr-defined]
        for s in samples
        if "drift" in s.name  # type: ignore[attr-defined]
    }


def test_a_window_that_just_began_does_not_decide_drift(world: World) -> None:
    world.log(features(400, seed=1), [T0 + i * 1000 for i in range(400)])
    first = run_monitoring(world.settings, window="1h")
    before = _drift(first.samples)
    assert ("loopml_drift_share", "") in before
    # ten rows of a new hour, far off: too few to compare, the last full window stands
    world.log(features(10, seed=2, shift=4.0), [T0 + HOUR + i for i in range(10)])
    second = run_monitoring(world.settings, window="1h")
    assert _drift(second.samples) == before
    assert not second.fired and not second.resolved
    current = second.reports[DEPLOYMENT].current
    assert current is not None
    drift = current.version("churn@1").data_drift  # type: ignore[union-attr]
    assert drift is not None and not drift.drifted
    assert all(f.score is None for f in drift.features.values())
    # once the new hour has enough rows, it decides
    world.log(features(200, seed=3, shift=4.0), [T0 + HOUR + 100 + i for i in range(200)])
    third = run_monitoring(world.settings, window="1h")
    assert _drift(third.samples)[("loopml_drift_share", "")] > 0
    assert "dataset_drift" in [c.alert.rule for c in third.fired]


def test_few_current_rows_are_not_evaluated_and_auto_uses_the_smaller_sample() -> None:
    rng = np.random.default_rng(0)
    reference = profile(pd.DataFrame({"a": rng.normal(size=5000)}))
    shifted = pd.DataFrame({"a": rng.normal(3.0, 1.0, size=50)})
    few = detect_drift(reference, shifted).features["a"]
    assert few.score is None and not few.drifted and few.n_current == 50
    assert few.statistics["ks_statistic"] is not None  # shown, deciding nothing
    decided = detect_drift(reference, shifted, DriftThresholds(min_current_rows=20))
    assert decided.drifted and decided.features["a"].method == "ks"  # 50 values: a test
    with pytest.raises(ValidationError, match="min_current_rows"):
        DriftThresholds(min_current_rows=0)


def test_a_feature_rule_for_an_unknown_feature_is_refused() -> None:
    reference = profile(pd.DataFrame({"a": np.arange(200.0)}))
    thresholds = DriftThresholds(features={"typo": FeatureRule(ignore=True)})
    with pytest.raises(ValidationError, match=r"\['typo'\]"):
        detect_drift(reference, pd.DataFrame({"a": np.arange(150.0)}), thresholds)


def test_a_dataframe_column_of_mixed_types_is_named() -> None:
    reference = profile(pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50}))
    with pytest.raises(ValidationError, match="column 'x'"):
        detect_drift(reference, pd.DataFrame({"x": [1.0, "n/a", 3.0], "c": ["a", "b", "a"]}))
    with pytest.raises(ValidationError, match="column 'c'"):
        detect_drift(reference, pd.DataFrame({"x": [1.0, 2.0], "c": ["a", 7]}))


def test_the_prediction_reference_is_found_after_many_quiet_windows(world: World) -> None:
    minute = 60_000
    # an answer a minute for 210 minutes (no minute reaches 100), then busy minutes
    world.log(features(210, seed=1), [T0 + i * minute for i in range(210)])
    for m in (220, 221, 222):
        world.log(features(300, seed=m), [T0 + m * minute + i for i in range(300)])
    with Monitor(world.settings) as monitor:
        report = monitor.report(DEPLOYMENT, "1m")
    current = report.current
    assert current is not None
    version = current.version("churn@1")
    assert version is not None
    assert version.prediction_reference == T0 // minute + 220
    assert version.prediction_drift is not None


def test_metrics_show_the_scheduled_window_only(world: World) -> None:
    world.log(features(300, seed=1), [T0 + i * 1000 for i in range(300)])
    with Monitor(world.settings) as monitor:
        monitor.report(DEPLOYMENT, "1h")
        monitor.report(DEPLOYMENT, "25rows")  # by hand, later: not what /metrics shows

    def rows(collector: MonitoringCollector) -> list[float]:
        found = [f for f in collector.collect() if f.name == "loopml_window_rows"]
        return [s.value for f in found for s in f.samples]

    assert rows(MonitoringCollector(world.settings, DEPLOYMENT)) == [300.0]
    assert rows(MonitoringCollector(world.settings, DEPLOYMENT, window="25rows")) == [25.0]
