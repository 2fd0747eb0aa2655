"""Odd requests in the prediction log never stop a deployment's monitoring: extra fields
are not read, a feature value that is not of the feature's kind counts as missing and
is reported as invalid."""

from __future__ import annotations

from typing import Any

import pytest

from loopml.core import Settings
from loopml.monitoring import Monitor, MonitorReport
from loopml.serving import PredictionLog, PredictionRecord, new_prediction_id
from tests.monitoring.monitored import DEPLOYMENT, T0, World, make_world

_ANSWER = {"prediction": 1, "probabilities": {"0": 0.3, "1": 0.7}}


@pytest.fixture
def world(settings: Settings) -> World:
    return make_world(settings)


def _log(world: World, inputs: list[dict[str, Any]], start: int) -> None:
    records = [
        PredictionRecord(
            new_prediction_id(), start + i, DEPLOYMENT, "churn@1", row, _ANSWER, 2.0, False
        )
        for i, row in enumerate(inputs)
    ]
    with PredictionLog(world.settings, durable=False) as log:
        for done in log.append_many(records):
            done.result()


def _report(world: World) -> MonitorReport:
    with Monitor(world.settings) as monitor:
        return monitor.report(DEPLOYMENT, "1h")


def test_an_extra_field_of_varying_type_is_not_read(world: World) -> None:
    _log(
        world,
        [
            {"a": 0.1 * i, "b": 0.2, "session": i if i % 2 else f"s{i}", "ctx": [i] if i else "x"}
            for i in range(20)
        ],
        T0,
    )
    version = _report(world).windows[-1].version("churn@1")
    assert version is not None and version.rows == 20
    drift = version.data_drift
    assert drift is not None and set(drift.features) == {"a", "b"}
    assert drift.features["a"].n_current == 20
    assert version.invalid_inputs == {}


def test_a_value_of_the_wrong_kind_counts_as_missing_and_the_log_goes_on(world: World) -> None:
    _log(world, [{"a": 0.1 * i, "b": 0.2} for i in range(50)], T0)
    _log(world, [{"a": "oops", "b": 0.2}, {"a": {"x": 1}, "b": "0.5"}], T0 + 100)
    first = _report(world)
    version = first.windows[-1].version("churn@1")
    assert version is not None and version.rows == 52
    assert version.invalid_inputs == {"a": 2}
    drift = version.data_drift
    assert drift is not None
    assert drift.features["a"].n_current == 50  # the two bad values count as missing
    assert drift.features["b"].n_current == 52  # "0.5" is a number spelled as text
    samples = {(s.name, s.labels.get("feature")): s.value for s in first.samples()}
    assert samples[("loopml_invalid_inputs", "a")] == 2
    _log(world, [{"a": 0.5, "b": 0.2}], T0 + 200)  # the next pass reads on
    assert _report(world).rows_read == 1
