"""The micro-batcher: idle only when nothing runs and nothing waits."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loopml.serving._batching import Batcher


def test_idle_while_nothing_runs_or_waits() -> None:
    release = threading.Event()
    calls: list[int] = []

    def predict(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls.append(len(rows))
        release.wait(5)
        return [{"prediction": row["x"]} for row in rows]

    async def scenario() -> list[bool]:
        batcher = Batcher(predict)
        seen = [batcher.idle]
        with ThreadPoolExecutor(2) as pool:
            first = batcher.submit([{"x": 1}], pool, stall_s=10)
            second = batcher.submit([{"x": 2}, {"x": 3}], pool, stall_s=10)  # waits
            seen.append(batcher.idle)
            release.set()
            assert await first == [{"prediction": 1}]
            assert await second == [{"prediction": 2}, {"prediction": 3}]
            seen.append(batcher.idle)
        return seen

    assert asyncio.run(scenario()) == [True, False, True]
    assert calls == [1, 2]  # the waiting request went in a call of its own
