"""One tick of one schedule: which slots are due, and firing each exactly once.

A slot is claimed by inserting its row into ``schedule_fires``, whose primary key
(schedule, slot) is the lock: the database lets exactly one insert win, and every
loser gets a duplicate-key error in its own short transaction, which is rolled back
as it leaves :meth:`MetadataStore.transact` and leaves the connection clean, on
SQLite and PostgreSQL alike. Only the winner runs the pipeline.

What is due:

- cron: the latest slot at or before now, if the schedule already existed then. After
  downtime only the latest missed slot fires (Airflow's ``catchup=False``).
- dataset: every version of the dataset newer than the trigger's cursor, once each.
- event: every event of that name newer than the trigger's cursor, once each.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.core import ValidationError, now_ms
from loopml.pipelines import _schedules as rows
from loopml.pipelines._cron import latest_slot
from loopml.pipelines._events import list_events, settled_event_id
from loopml.pipelines._schedules import Fire, Schedule
from loopml.store import MetadataStore

__all__ = ["Due", "due", "fire", "slot_key"]

_log = logging.getLogger("loopml.pipelines")
# An event id is taken before its transaction commits, so on PostgreSQL a smaller id
# can appear after a larger one. The cursor only passes events this old; younger ones
# are found again and skipped because their fire row exists.
EVENT_SETTLE_MS = 60_000
EVENTS_PER_TICK = 100
# Runs the pipeline of a schedule for a slot; returns the run record (id, status, error).
Run = Callable[[Schedule, str], Any]


@dataclass(frozen=True, slots=True)
class Due:
    """The slots due now, each with the cursor position firing it reaches, and where
    the cursor may move once they are handled (events only)."""

    slots: list[tuple[str, int | None]] = field(default_factory=list)
    settle: int | None = None


def slot_key(moment: dt.datetime) -> str:
    """A cron slot as stored: the UTC minute in ISO form, such as ``2026-11-23T10:15Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def due(store: MetadataStore, schedule: Schedule, now: dt.datetime) -> Due:
    """What ``schedule`` should fire at ``now``."""
    if schedule.kind == "cron":
        try:
            slot = latest_slot(schedule.spec, now)
        except ValidationError as exc:  # no slot in decades: nothing is due
            _log.warning("schedule %s: %s", schedule.name, exc)
            return Due()
        slot_ms = int(slot.timestamp() * 1000)
        if slot_ms < schedule.created_ms or slot_ms <= schedule.cursor:
            return Due()
        return Due([(slot_key(slot), slot_ms)])
    if schedule.kind == "dataset":
        with store.read() as conn:
            versions = rows.new_versions(conn, schedule.spec, schedule.cursor)
        return Due([(f"v{version}", version) for version in versions])
    if schedule.kind == "event":
        with store.read() as conn:
            settle = settled_event_id(
                conn, schedule.spec, schedule.cursor, now_ms() - EVENT_SETTLE_MS
            )
            found = list_events(
                conn, schedule.spec, EVENTS_PER_TICK, after=schedule.cursor, oldest_first=True
            )
            done = rows.fired_slots(conn, schedule.id, [f"event:{e.id}" for e in found])
        if len(found) == EVENTS_PER_TICK:  # more are waiting: do not pass them
            settle = min(settle, found[-1].id)
        slots: list[tuple[str, int | None]] = [
            (f"event:{e.id}", None) for e in found if f"event:{e.id}" not in done
        ]
        return Due(slots, settle if settle > schedule.cursor else None)
    _log.warning("schedule %s has unknown kind %r; skipped", schedule.name, schedule.kind)
    return Due()


def _claim(
    store: MetadataStore, schedule: Schedule, slot: str, position: int | None, by: str, at: int
) -> bool:
    def work(conn: Any) -> None:
        rows.insert_fire(conn, schedule.id, slot, by, at)
        if position is not None:
            rows.advance_cursor(conn, schedule.id, position)

    try:
        store.transact(work)
    except SqlIntegrityError:
        # Another scheduler holds the slot (or the schedule was just removed).
        return False
    return True


def fire(
    store: MetadataStore,
    schedule: Schedule,
    slot: str,
    position: int | None,
    *,
    by: str,
    run: Run,
) -> Fire | None:
    """Claim ``slot`` for scheduler ``by``; if it won, run the pipeline and record how.

    Returns None when another scheduler had the slot. A run that fails, or cannot
    even start, is recorded on the fire and does not raise.
    """
    at_ms = now_ms()
    if not _claim(store, schedule, slot, position, by, at_ms):
        return None
    _log.info("schedule %s: firing %s (%s)", schedule.name, slot, schedule.pipeline_ref)
    run_id: str | None = None
    try:
        record = run(schedule, slot)
        status, run_id, error = str(record.status), str(record.id), record.error
    except Exception as exc:  # the run could not start; keep scheduling the rest
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C mid-run: say so on the fire, then stop
        _finish(store, schedule, slot, "failed", None, "interrupted")
        raise
    _finish(store, schedule, slot, status, run_id, error)
    if status != "succeeded":
        _log.warning("schedule %s: %s %s: %s", schedule.name, slot, status, error)
    return Fire(schedule.name, schedule.id, slot, by, status, run_id, error, at_ms)


def _finish(
    store: MetadataStore,
    schedule: Schedule,
    slot: str,
    status: str,
    run_id: str | None,
    error: str | None,
) -> None:
    store.transact(lambda c: rows.finish_fire(c, schedule.id, slot, status, run_id, error))
