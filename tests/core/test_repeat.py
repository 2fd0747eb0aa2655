"""repeat: the daemon loop keeps going past a failing tick and stops when told."""

from __future__ import annotations

import logging
import threading

import pytest

from loopml.core import ValidationError, repeat

_log = logging.getLogger("test-repeat")


def test_a_failing_tick_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database away a moment")

    assert repeat(tick, interval_s=0, max_ticks=3, name="demo", log=_log) == 3
    assert calls == [0, 1, 2]
    assert "demo: tick failed" in caplog.text


def test_stop_ends_the_loop() -> None:
    stop = threading.Event()
    ticks = repeat(stop.set, interval_s=0, stop=stop, name="demo", log=_log)
    assert ticks == 1


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValidationError, match="interval_s must be >= 0"):
        repeat(lambda: None, interval_s=-1, name="demo", log=_log)
