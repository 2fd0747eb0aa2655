"""The daemon loop shared by the scheduler and the loop controller."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from loopml.core._errors import ValidationError

__all__ = ["repeat"]


def repeat(
    tick: Callable[[], object],
    *,
    interval_s: float,
    max_ticks: int | None = None,
    stop: threading.Event | None = None,
    name: str,
    log: logging.Logger,
) -> int:
    """Call ``tick`` every ``interval_s`` seconds until ``max_ticks`` calls, ``stop`` is set,
    or Ctrl-C; return the number of calls.

    A tick that raises (the database away a moment, say) is logged under ``name`` and the
    next one tries again: a daemon must outlive a passing failure.
    """
    if interval_s < 0:
        raise ValidationError(f"interval_s must be >= 0; got {interval_s}")
    ticks = 0
    try:
        while stop is None or not stop.is_set():
            try:
                tick()
            except Exception:
                log.exception("%s: tick failed", name)
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            if stop is not None:
                stop.wait(interval_s)
            else:
                time.sleep(interval_s)
    except KeyboardInterrupt:
        log.info("%s: stopped", name)
    return ticks
