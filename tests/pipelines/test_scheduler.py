"""Schedules and triggers on both databases: each slot fires exactly once, real runs."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from loopml.core import AlreadyExistsError, NotFoundError, Settings, ValidationError
from loopml.data import DataCatalog
from loopml.pipelines import _ticks
from loopml.pipelines._events import emit_event
from loopml.pipelines._scheduler import Scheduler
from loopml.pipelines._ticks import slot_key
from loopml.store import open_store, schema

PIPES = """
from loopml.pipelines import pipeline, step


@step
def hello(n: int) -> int:
    return n + 1


@step
def boom(n: int) -> int:
    raise RuntimeError(f"boom {n}")


@pipeline
def tiny(n: int = 1):
    hello(n)


@pipeline
def broken(n: int = 1):
    boom(n)
"""

# Tomorrow, so every slot lies after the schedules' creation.
DAY = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return DAY.replace(hour=hour, minute=minute, second=second)


@pytest.fixture
def pipes(tmp_path: Path) -> str:
    path = tmp_path / "sched_pipes.py"
    path.write_text(PIPES)
    return str(path)


@pytest.fixture
def scheduler(settings: Settings) -> Any:
    with Scheduler(settings, name="test") as sched:
        yield sched


def pipeline_runs(settings: Settings) -> list[Any]:
    store = open_store(settings.db_url)
    try:
        with store.read() as conn:
            R = schema.pipeline_runs
            query = select(R.c.id, R.c.status, R.c.started_by, R.c.params).order_by(R.c.start_ms)
            return list(conn.execute(query))
    finally:
        store.close()


def fire_count(settings: Settings) -> int:
    store = open_store(settings.db_url)
    try:
        with store.read() as conn:
            return int(conn.scalar(select(func.count()).select_from(schema.schedule_fires)) or 0)
    finally:
        store.close()


def test_a_cron_slot_fires_once_with_a_real_run(
    scheduler: Scheduler, settings: Settings, pipes: str
) -> None:
    scheduler.add_schedule("every15", f"{pipes}:tiny", "*/15 * * * *", params={"n": "41"})
    fired = scheduler.tick(at(10, 16))
    assert [(f.schedule, f.slot, f.status, f.scheduler) for f in fired] == [
        ("every15", slot_key(at(10, 15)), "succeeded", "test")
    ]
    for moment in (at(10, 16, 30), at(10, 15), at(10, 29, 59)):
        assert scheduler.tick(moment) == []
    assert [f.slot for f in scheduler.tick(at(10, 31))] == [slot_key(at(10, 30))]
    runs = pipeline_runs(settings)
    assert [r.started_by for r in runs] == [
        f"schedule:every15@{slot_key(at(10, 15))}",
        f"schedule:every15@{slot_key(at(10, 30))}",
    ]
    assert all(r.status == "succeeded" for r in runs)
    assert json.loads(runs[0].params) == {"n": 41}
    history = scheduler.fires("every15")
    assert [f.slot for f in history] == [slot_key(at(10, 30)), slot_key(at(10, 15))]
    assert {f.pipeline_run_id for f in history} == {r.id for r in runs}
    assert scheduler.get("every15").cursor == int(at(10, 30).timestamp() * 1000)
    assert slot_key(at(10, 15)).endswith("T10:15Z")


def test_no_backfill_and_only_the_latest_missed_slot(scheduler: Scheduler, pipes: str) -> None:
    scheduler.add_schedule("hourly", f"{pipes}:tiny", "@hourly")
    # The slot before the schedule existed does not fire.
    assert scheduler.tick(dt.datetime.now(dt.UTC)) == []
    # After five hours of downtime only the latest slot fires (catchup=False).
    fired = scheduler.tick(at(15, 20))
    assert [f.slot for f in fired] == [slot_key(at(15, 0))]
    assert scheduler.tick(at(15, 59)) == []


def test_a_lost_claim_leaves_the_loser_healthy(
    scheduler: Scheduler, settings: Settings, pipes: str
) -> None:
    """The loser of a slot hits the primary key, rolls back, and carries on."""
    scheduler.add_schedule("claim", f"{pipes}:tiny", "*/5 * * * *")
    stale = scheduler.get("claim")  # what a second scheduler read before the first fired
    with Scheduler(settings, name="loser") as loser:
        assert len(scheduler.tick(at(9, 0))) == 1
        # The loser read the schedule before the winner fired: it tries the same slot.
        slots = _ticks.due(loser.store, stale, at(9, 0)).slots
        assert slots == [(slot_key(at(9, 0)), int(at(9, 0).timestamp() * 1000))]
        assert _ticks.fire(loser.store, stale, *slots[0], by="loser", run=loser._run) is None
        assert [f.scheduler for f in loser.tick(at(9, 5))] == ["loser"]
        assert loser.emit_event("after") > 0
    assert fire_count(settings) == 2 and len(pipeline_runs(settings)) == 2


def _race(
    settings: Settings, name: str, barrier: Any, moments: list[dt.datetime], out: Any
) -> None:
    claimed = []
    with Scheduler(settings, name=name) as sched:
        sched.list()  # connect and migrate before the start line
        for moment in moments:
            barrier.wait(timeout=60)
            claimed.extend(f.slot for f in sched.tick(moment))
    out.put((name, claimed))


@pytest.mark.slow
def test_two_scheduler_processes_fire_each_slot_once(
    scheduler: Scheduler, settings: Settings, pipes: str
) -> None:
    for i in range(3):
        scheduler.add_schedule(f"race{i}", f"{pipes}:tiny", "*/5 * * * *")
    moments = [at(11, 0), at(11, 5), at(11, 7)]  # the third finds nothing new
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_race, args=(settings, f"sched{i}", barrier, moments, out))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    claimed = [slot for slots in results.values() for slot in slots]
    assert len(claimed) == 6  # 3 schedules x 2 slots, each by exactly one scheduler
    assert fire_count(settings) == 6
    runs = pipeline_runs(settings)
    assert len(runs) == 6 and len({r.started_by for r in runs}) == 6
    fires = scheduler.fires()
    assert {f.scheduler for f in fires} <= {"sched0", "sched1"}
    assert all(f.status == "succeeded" for f in fires)


def test_two_schedulers_in_threads_fire_once(
    scheduler: Scheduler, settings: Settings, pipes: str
) -> None:
    scheduler.add_schedule("threads", f"{pipes}:tiny", "* * * * *")
    barrier = threading.Barrier(4)
    claimed: list[str] = []

    def worker(i: int) -> None:
        with Scheduler(settings, name=f"t{i}") as sched:
            sched.list()
            for minute in range(3):
                barrier.wait(timeout=60)
                claimed.extend(f.slot for f in sched.tick(at(12, minute)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(claimed) == [slot_key(at(12, m)) for m in range(3)]
    assert fire_count(settings) == 3 and len(pipeline_runs(settings)) == 3


def test_a_new_dataset_version_fires_once(
    scheduler: Scheduler, settings: Settings, pipes: str, tmp_path: Path
) -> None:
    catalog = DataCatalog(settings)
    data = tmp_path / "flights.csv"
    data.write_text("id,delay\n1,5\n")
    catalog.ingest(data, name="old")
    old = scheduler.add_trigger("on-old", f"{pipes}:tiny", on_dataset="old")
    new = scheduler.add_trigger("on-flights", f"{pipes}:tiny", on_dataset="flights")
    assert (old.kind, old.spec, old.cursor, new.cursor) == ("dataset", "old", 1, 0)
    assert scheduler.tick() == []  # the version that existed before does not fire
    catalog.ingest(data, name="flights")
    assert [(f.schedule, f.slot) for f in scheduler.tick()] == [("on-flights", "v1")]
    assert scheduler.tick() == []
    catalog.ingest(data, name="flights")  # same content: no new version, no fire
    assert scheduler.tick() == []
    for rows in ("2,7\n", "3,9\n"):
        data.write_text(data.read_text() + rows)
        catalog.ingest(data, name="flights")
    assert [f.slot for f in scheduler.tick()] == ["v2", "v3"]
    assert scheduler.get("on-flights").cursor == 3
    assert len(pipeline_runs(settings)) == 3
    catalog.close()


def test_an_event_fires_its_trigger_once(
    scheduler: Scheduler, settings: Settings, pipes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = scheduler.emit_event("drift", {"psi": 0.1})
    trigger = scheduler.add_trigger("on-drift", f"{pipes}:tiny", on_event="drift")
    assert (trigger.kind, trigger.cursor) == ("event", before)
    assert scheduler.tick() == []
    scheduler.emit_event("other")
    event_id = emit_event("drift", {"psi": 0.4}, source="monitoring", settings=settings)
    assert event_id > before
    assert [(f.slot, f.status) for f in scheduler.tick()] == [(f"event:{event_id}", "succeeded")]
    assert scheduler.tick() == []
    # Let the cursor pass events at once, even one stamped in this very millisecond.
    monkeypatch.setattr(_ticks, "EVENT_SETTLE_MS", -1000)
    second = scheduler.emit_event("drift")
    assert [f.slot for f in scheduler.tick()] == [f"event:{second}"]
    assert scheduler.get("on-drift").cursor == second
    assert scheduler.tick() == []
    events = scheduler.events("drift")
    assert [(e.id, e.payload, e.source) for e in events] == [
        (second, {}, "user"),
        (event_id, {"psi": 0.4}, "monitoring"),
        (before, {"psi": 0.1}, "user"),
    ]
    assert len(pipeline_runs(settings)) == 2


def test_disabled_schedules_do_not_fire(scheduler: Scheduler, pipes: str) -> None:
    scheduler.add_schedule("off", f"{pipes}:tiny", "* * * * *")
    scheduler.add_trigger("off-event", f"{pipes}:tiny", on_event="nudge")
    assert not scheduler.set_enabled("off", False).enabled
    scheduler.set_enabled("off-event", False)
    scheduler.emit_event("nudge")
    assert scheduler.tick(at(13, 0)) == []
    assert scheduler.set_enabled("off", True).enabled
    assert [f.schedule for f in scheduler.tick(at(13, 1))] == ["off"]


def test_failures_are_recorded_and_the_loop_goes_on(
    scheduler: Scheduler, settings: Settings, pipes: str, tmp_path: Path
) -> None:
    scheduler.add_trigger("broken", f"{pipes}:broken", on_event="go")
    scheduler.add_trigger("missing", f"{tmp_path / 'nope.py'}:tiny", on_event="go")
    scheduler.add_trigger("fine", f"{pipes}:tiny", on_event="go")
    scheduler.emit_event("go")
    seen: list[str] = []
    assert scheduler.run(interval_s=0, max_ticks=2, on_fire=lambda f: seen.append(f.schedule)) == 2
    assert sorted(seen) == ["broken", "fine", "missing"]
    fires = {f.schedule: f for f in scheduler.fires()}
    assert fires["broken"].status == "failed" and "boom 1" in (fires["broken"].error or "")
    assert fires["broken"].pipeline_run_id is not None
    assert fires["missing"].status == "failed" and "nope.py" in (fires["missing"].error or "")
    assert fires["missing"].pipeline_run_id is None
    assert fires["fine"].status == "succeeded"
    statuses = sorted(r.status for r in pipeline_runs(settings))
    assert statuses == ["failed", "succeeded"]


def test_run_stops_when_asked(scheduler: Scheduler) -> None:
    scheduler.list()  # connect first, so the timer below measures ticks only
    stop = threading.Event()
    stop.set()
    assert scheduler.run(interval_s=0, stop=stop) == 0
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    assert scheduler.run(interval_s=0.05, stop=stop) >= 2
    timer.join()


def test_a_tick_that_breaks_does_not_stop_the_loop(
    scheduler: Scheduler, pipes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler.add_trigger("later", f"{pipes}:tiny", on_event="go")
    scheduler.emit_event("go")
    real_due, calls = _ticks.due, []

    def flaky_due(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return real_due(*args)

    monkeypatch.setattr(_ticks, "due", flaky_due)
    assert scheduler.run(interval_s=0, max_ticks=2) == 2
    assert [f.status for f in scheduler.fires("later")] == ["succeeded"]


def test_list_get_remove(scheduler: Scheduler, pipes: str) -> None:
    scheduler.add_schedule("b", "my.module:train", "0 3 * * *", executor="process")
    scheduler.add_trigger("a", f"{pipes}:tiny", on_event="x", params={"n": 2})
    assert [s.name for s in scheduler.list()] == ["a", "b"]
    b = scheduler.get("b")
    assert (b.kind, b.spec, b.executor, b.params, b.enabled) == (
        "cron",
        "0 3 * * *",
        "process",
        {},
        True,
    )
    assert scheduler.get("a").params == {"n": 2}
    scheduler.emit_event("x")
    assert len(scheduler.tick()) == 1
    scheduler.remove("a")
    assert [s.name for s in scheduler.list()] == ["b"]
    assert scheduler.fires() == []
    with pytest.raises(NotFoundError, match="no schedule named 'a'"):
        scheduler.get("a")
    with pytest.raises(NotFoundError):
        scheduler.remove("a")
    with pytest.raises(NotFoundError):
        scheduler.fires("a")
    # The name is free again.
    scheduler.add_trigger("a", f"{pipes}:tiny", on_event="x")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.add_schedule("c", "m:p", "61 * * * *"), ValidationError, "61 is out of"),
        (lambda s: s.add_schedule("c", "m:p", "@daily", executor="k8s"), ValidationError, "k8s"),
        (lambda s: s.add_trigger("c", "m:p"), ValidationError, "exactly one"),
        (
            lambda s: s.add_trigger("c", "m:p", on_dataset="d", on_event="e"),
            ValidationError,
            "exactly one",
        ),
        (lambda s: s.add_trigger("c", "m:p", on_dataset="d@2"), ValidationError, "'@'"),
        (lambda s: s.add_schedule("c", "m", "@daily"), ValidationError, "module:attr"),
        (lambda s: s.add_schedule("c", "a b:c", "@daily"), ValidationError, "module:attr"),
        (lambda s: s.add_schedule("c", "dir/x.txt:p", "@daily"), ValidationError, "module:attr"),
        (lambda s: s.add_schedule(" ", "m:p", "@daily"), ValidationError, "schedule name"),
        (
            lambda s: s.add_schedule("c", "m:p", "@daily", params={"x": object()}),
            ValidationError,
            "JSON",
        ),
        (lambda s: s.add_schedule("c", "m:p", "@daily", params={1: 2}), ValidationError, "params"),
        (lambda s: s.add_schedule("taken", "m:p", "@daily"), AlreadyExistsError, "'taken'"),
        (lambda s: s.emit_event("e", {"x": {1, 2}}), ValidationError, "JSON"),
        (lambda s: s.emit_event(""), ValidationError, "event name"),
        (lambda s: s.set_enabled("nope", False), NotFoundError, "'nope'"),
    ],
)
def test_bad_input(settings: Settings, call: Any, error: type[Exception], message: str) -> None:
    with Scheduler(settings) as sched:
        sched.add_schedule("taken", "pkg.mod:pipe", "@daily")
        with pytest.raises(error, match=message):
            call(sched)
        assert [s.name for s in sched.list()] == ["taken"]


def test_file_references_are_accepted(scheduler: Scheduler) -> None:
    assert scheduler.add_schedule("f", "flows/train.py:train", "@daily").pipeline_ref == (
        "flows/train.py:train"
    )
    assert scheduler.add_schedule("g", "pkg.flows:train", "@daily").kind == "cron"
    with pytest.raises(ValidationError, match="pipeline reference"):
        scheduler.add_schedule("h", "pkg.flows:pipes.train", "@daily")  # the loader takes one name
