"""Micro-batching: concurrent requests for one model version share one ``predict`` call.

A scikit-learn call on one row costs nearly as much as on a few dozen (input checks, not
arithmetic, dominate), and eight threads each calling ``predict`` fight over the GIL. So
each loaded version gets a :class:`Batcher`: while a call is running, the records of
requests arriving meanwhile wait, and when it returns they all go in the next call, in
one worker thread. At concurrency 1 nothing waits: a lone request is sent at once.

Failures stay per request: when a batch of several requests fails, each request's records
are scored again on their own, so one bad record fails only its own request. A batch that
runs past ``stall_s`` (half the deployment's timeout) no longer holds the others back: the
next batch starts beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

__all__ = ["Batcher"]

Rows = list[dict[str, Any]]
Answers = list[dict[str, Any]]
_Pending = tuple[Rows, "asyncio.Future[Answers]"]


def _score_batch(predict: Callable[[Rows], Answers], batch: list[Rows]) -> list[Any]:
    """Each request's answers (or the exception its records raise), in one thread."""
    if len(batch) == 1:
        try:
            return [predict(batch[0])]
        except Exception as exc:
            return [exc]
    rows = [row for request in batch for row in request]
    try:
        answers = predict(rows)
    except Exception:
        results: list[Any] = []
        for request in batch:  # isolate the request at fault
            try:
                results.append(predict(request))
            except Exception as exc:
                results.append(exc)
        return results
    out: list[Any] = []
    start = 0
    for request in batch:
        out.append(answers[start : start + len(request)])
        start += len(request)
    return out


class Batcher:
    """Batches the calls of one loaded model; lives on the event loop's thread."""

    def __init__(
        self,
        predict: Callable[[Rows], Answers],
        *,
        max_rows: int = 256,
        stall_s: float = 0.5,
    ) -> None:
        self._predict = predict
        self._executor: Executor | None = None
        self._max_rows = max_rows
        self._stall_s = stall_s
        self._pending: list[_Pending] = []
        self._running: list[float] = []  # start times of the calls in flight
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, rows: Rows, executor: Executor, stall_s: float) -> asyncio.Future[Answers]:
        """A future of the model's answers for ``rows``, scored in ``executor`` together with
        concurrent requests' (a call running longer than ``stall_s`` lets the next one
        start). Cancelling the future (a timeout) drops the request, not the batch."""
        self._executor, self._stall_s = executor, stall_s
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answers] = loop.create_future()
        self._pending.append((rows, future))
        self._dispatch(loop)
        return future

    @property
    def idle(self) -> bool:
        """No call is running and no request waits."""
        return not self._running and not self._pending

    def _may_start(self) -> bool:
        if not self._running:
            return True
        return time.monotonic() - self._running[-1] >= self._stall_s

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending and self._may_start():
            batch: list[_Pending] = []
            count = 0
            while self._pending and (
                not batch or count + len(self._pending[0][0]) <= self._max_rows
            ):
                item = self._pending.pop(0)
                batch.append(item)
                count += len(item[0])
            self._start(loop, batch)
        if self._pending and self._timer is None:
            # a stalled call: look again when it has run for stall_s
            wait = max(0.0, self._running[-1] + self._stall_s - time.monotonic())
            self._timer = loop.call_later(wait, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._dispatch(loop)

    def _start(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        started = time.monotonic()
        self._running.append(started)
        work = loop.run_in_executor(
            self._executor, _score_batch, self._predict, [rows for rows, _ in batch]
        )

        def done(finished: asyncio.Future[list[Any]]) -> None:
            self._running.remove(started)
            error = None if finished.cancelled() else finished.exception()
            for index, (_, future) in enumerate(batch):
                if future.done():  # its caller gave up (timeout) or went away
                    continue
                if error is not None:
                    future.set_exception(error)
                elif finished.cancelled():
                    future.cancel()
                else:
                    result = finished.result()[index]
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
            self._dispatch(loop)

        work.add_done_callback(done)
