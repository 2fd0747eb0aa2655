"""The loop's state outlives its controller: a schedule fires once per slot across
controllers, and a controller killed mid-retrain is taken over and the rollout goes on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from loopml.core import Settings
from loopml.loop import LoopController, LoopPolicy, Triggers
from tests.loop.conftest import World
from tests.loop.helpers import Clock, Samples, rows, serve_and_label


def test_a_schedule_fires_once_per_slot_without_back_fill(
    world: World, tick: Callable[..., Any]
) -> None:
    policy = world.policy(triggers=Triggers(schedule="0 3 * * *"))
    assert tick(policy).decisions == []  # 00:00: yesterday's 03:00 slot is only noted
    world.clock.advance(2 * 3600)
    assert tick(policy).decisions == []
    world.clock.advance(3600)  # 03:00
    [retrain] = tick(policy).decisions
    assert retrain.kind == "retrain"
    assert "schedule '0 3 * * *' came due at 2026-01-01 03:00 UTC" in retrain.reason
    world.clock.advance(60)
    assert tick(policy).decisions == []


def _tick_in_child(settings: Settings, policy: LoopPolicy, samples: Samples) -> None:
    with LoopController(
        settings, policies=[policy], samples=samples, clock=Clock(), lease_ttl_s=1.0
    ) as controller:
        controller.tick()


def _state(world: World) -> Any:
    with world.controller() as controller:
        return controller.state("churn-api")


@pytest.mark.slow
def test_a_controller_killed_while_training_is_taken_over(world: World) -> None:
    policy = world.policy(pipeline_params={"sleep_s": 4.0})
    world.samples.drift("churn-api", 0.6)
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_tick_in_child, args=(world.settings, policy, world.samples))
    child.start()
    deadline = time.monotonic() + 120
    while _state(world).data.get("rollout", {}).get("attempts") != 1:  # its pipeline started
        assert time.monotonic() < deadline and child.is_alive()
        time.sleep(0.2)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)  # mid-training: the retrain decision is stored
    child.join(timeout=30)
    with world.controller(policy, lease_ttl_s=1.0) as controller:
        deadline = time.monotonic() + 30
        while not (report := controller.tick()).acted:  # the dead one's lease runs out
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert report.decisions == [] and report.states["churn-api"] == "evaluating"
        data = controller.state("churn-api").data["rollout"]
        assert data["attempts"] == 2 and data["candidate"] == "churn@2"
        assert [d.kind for d in controller.history()] == ["retrain"]
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    with world.controller(policy) as controller:
        assert [d.kind for d in controller.tick().decisions] == ["canary"]
