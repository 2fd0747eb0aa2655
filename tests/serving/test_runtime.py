"""Loaded versions: where a compiled version's small requests are scored."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.core import Settings
from loopml.registry import ModelRegistry
from loopml.registry._trees import CompiledBoosting
from loopml.serving import _runtime
from loopml.serving._app import Runtime
from loopml.serving._runtime import INLINE_ROWS, LoadedModel


class _Recording(CompiledBoosting):
    """A compiled form that notes the thread each scoring call ran in."""

    def scores(self, x: np.ndarray[Any, Any]) -> tuple[list[Any], np.ndarray[Any, Any]]:
        self.__dict__.setdefault("threads", []).append(threading.current_thread().name)
        return super().scores(x)


def _compiled(settings: Settings) -> bytes:
    from sklearn.ensemble import GradientBoostingClassifier

    from loopml.training import fit

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["label"] = (frame["a"] > 0).astype(int)
    run = fit(
        GradientBoostingClassifier(n_estimators=10), frame, target="label", settings=settings, cv=0
    )
    with ModelRegistry(settings) as registry:
        version = registry.register("m", run_id=run.run_id)
        return registry.load_compiled(version.ref).to_bytes()


def _threads_used(blob: bytes, rows: int, settings: Settings) -> tuple[LoadedModel, list[str]]:
    compiled = _Recording.from_bytes(blob)
    inputs = ({"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "float64"})
    model = LoadedModel("m@1", None, inputs, compiled=compiled)
    compiled.__dict__["threads"] = []  # what loading measured is not counted
    runtime = Runtime(settings, "m")
    try:
        records = [{"a": 0.5, "b": -1.0}] * rows
        answers = asyncio.run(runtime.call(model, records, timeout_ms=1000))
    finally:
        runtime.executor.shutdown()
    assert len(answers) == rows
    return model, compiled.__dict__["threads"]


def test_a_cheap_version_scores_a_small_request_on_the_event_loop(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = _compiled(sqlite_settings)
    monkeypatch.setattr(_runtime, "INLINE_BUDGET_MS", float("inf"))  # any cost is cheap
    model, threads = _threads_used(blob, INLINE_ROWS, sqlite_settings)
    assert model.inline_ms is not None
    assert threads == [threading.current_thread().name]  # asyncio.run's loop: this thread
    _, threads = _threads_used(blob, INLINE_ROWS + 1, sqlite_settings)  # too many rows
    assert len(threads) == 1 and threads[0].startswith("loopml-model")


def test_a_version_over_the_budget_goes_through_its_batcher(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = _compiled(sqlite_settings)
    monkeypatch.setattr(_runtime, "INLINE_BUDGET_MS", 0.0)  # no model is that fast
    model, threads = _threads_used(blob, 1, sqlite_settings)
    assert model.inline_ms is None
    assert len(threads) == 1 and threads[0].startswith("loopml-model")
