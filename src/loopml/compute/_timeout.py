"""Run a call with a time limit, interrupting it where Python allows."""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from loopml.core import LoopmlError, ValidationError

__all__ = ["StepTimeoutError", "call_with_timeout"]

T = TypeVar("T")


class StepTimeoutError(LoopmlError, TimeoutError):
    """A call ran longer than its time limit."""


def _raise_timeout(seconds: float) -> Callable[[int, Any], None]:
    def handler(_signum: int, _frame: Any) -> None:
        raise StepTimeoutError(f"timed out after {seconds:g} s")

    return handler


def call_with_timeout(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, raising :class:`StepTimeoutError` once ``seconds`` have passed.

    In a process's main thread (the CLI, a pool worker) a real-time timer interrupts
    the call between Python bytecodes, so the work stops. Elsewhere the call runs in
    a helper thread that is abandoned on timeout: Python cannot stop a thread, so the
    work goes on in the background while the caller moves on.
    """
    if seconds is None:
        return fn()
    if seconds <= 0:
        raise ValidationError(f"a time limit must be > 0 seconds; got {seconds}")
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGALRM, _raise_timeout(seconds))
        started = time.monotonic()
        outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer_delay > 0:  # an enclosing timer (another limit, pytest-timeout) goes on
                left = outer_delay - (time.monotonic() - started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    # The helper thread runs in a copy of the caller's context, so context variables
    # (the running step, for one) stay visible inside the call.
    context = contextvars.copy_context()
    worker = threading.Thread(
        target=context.run, args=(target,), name="loopml-timeout", daemon=True
    )
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StepTimeoutError(f"timed out after {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
