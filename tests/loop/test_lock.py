"""One controller acts per store: the lease, and two controllers racing in two processes
on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest

from loopml.core import Settings
from loopml.loop import Lease, LeaseLostError, LoopController, LoopPolicy
from loopml.pipelines import PipelineRuns
from loopml.store import open_store
from tests.loop.conftest import World
from tests.loop.helpers import Clock, Samples


def test_one_owner_at_a_time_and_takeover_after_expiry(settings: Settings) -> None:
    store = open_store(settings.db_url)
    try:
        first = Lease(store, owner="first", ttl_s=0.5)
        second = Lease(store, owner="second", ttl_s=0.5)
        assert first.acquire() and not second.acquire()
        holder = second.holder()
        assert holder is not None and holder.owner == "first"
        assert first.acquire()  # renewing keeps it
        first.release()
        assert first.holder() is None and second.acquire()
        time.sleep(0.7)  # second stopped renewing: its lease runs out
        assert second.holder() is None and first.acquire()

        def fenced(conn: Any) -> None:
            second.fence(conn)

        with pytest.raises(LeaseLostError, match="controller second lost the loop lease"):
            store.transact(fenced)
    finally:
        store.close()


def test_the_heartbeat_keeps_the_lease(settings: Settings) -> None:
    store = open_store(settings.db_url)
    try:
        holder, other = Lease(store, owner="holder", ttl_s=0.3), Lease(store, owner="other")
        assert holder.acquire()
        holder.start_heartbeat()
        time.sleep(0.8)  # past two ttls: only renewals keep it
        assert not other.acquire()
        holder.stop_heartbeat()
        time.sleep(0.4)
        assert other.acquire()
    finally:
        store.close()


def test_the_heartbeat_starts_again_after_the_lease_was_lost_once(settings: Settings) -> None:
    store = open_store(settings.db_url)
    try:
        mine, theirs = (
            Lease(store, owner="mine", ttl_s=0.3),
            Lease(store, owner="theirs", ttl_s=0.6),
        )
        assert mine.acquire()
        time.sleep(0.4)  # paused past its ttl: another controller takes over
        assert theirs.acquire()
        mine.start_heartbeat()
        deadline = time.monotonic() + 10
        while not mine.lost:  # its next beat finds the lease taken
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(LeaseLostError, match="controller mine lost the loop lease"):
            mine.check()  # every side effect checks this first
        time.sleep(0.7)  # the other one stopped: its lease runs out
        assert mine.acquire()
        mine.start_heartbeat()
        time.sleep(1.0)  # past three of its ttls: only renewals keep it
        mine.check()
        assert not Lease(store, owner="third", ttl_s=30).acquire()
        mine.stop_heartbeat()
    finally:
        store.close()


def _grab(settings: Settings, owner: str, barrier: Any, out: Any) -> None:
    store = open_store(settings.db_url)
    barrier.wait(timeout=60)
    out.put((owner, Lease(store, owner=owner, ttl_s=30).acquire()))
    store.close()


def test_four_processes_race_for_the_lease_and_one_wins(settings: Settings) -> None:
    open_store(settings.db_url).close()  # migrate before the start line
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_grab, args=(settings, f"p{i}", barrier, out)) for i in range(4)
    ]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(results.values()) == [False, False, False, True]


def _tick(settings: Settings, policy: LoopPolicy, samples: Samples, barrier: Any, out: Any) -> None:
    with LoopController(settings, policies=[policy], samples=samples, clock=Clock()) as controller:
        controller.states()  # connect before the start line
        barrier.wait(timeout=60)
        report = controller.tick()
        holder = report.holder.owner if report.holder else None
        out.put((controller.lease.owner, report.acted, [d.kind for d in report.decisions], holder))


@pytest.mark.slow
def test_two_controller_processes_tick_at_once_and_one_acts(world: World) -> None:
    policy = world.policy(pipeline_params={"sleep_s": 3.0})  # the winner is busy a while
    world.samples.drift("churn-api", 0.6)
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_tick, args=(world.settings, policy, world.samples, barrier, out))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    [winner] = [r for r in results if r[1]]
    [loser] = [r for r in results if not r[1]]
    assert winner[2] == ["retrain"]
    assert loser[2] == [] and loser[3] == winner[0]  # it says who holds the lease
    with world.controller(policy) as controller:
        assert [d.kind for d in controller.history()] == ["retrain"]
    with PipelineRuns(world.settings) as runs:
        assert len([r for r in runs.runs() if r.started_by.startswith("loop:")]) == 1
