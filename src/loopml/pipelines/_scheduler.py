"""The scheduler: schedules and triggers as data, and the loop that fires them.

Any number of schedulers may run against one database; each slot fires once (see
:mod:`loopml.pipelines._ticks` for the lock and for what is due when).
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from loopml.core import Settings, ValidationError, repeat
from loopml.governance import StoreService
from loopml.pipelines import _schedules as rows
from loopml.pipelines import _ticks
from loopml.pipelines._cron import parse_cron
from loopml.pipelines._events import Event, emit, list_events
from loopml.pipelines._guard import guarded
from loopml.pipelines._runner import run_ref
from loopml.pipelines._schedules import Fire, Schedule

__all__ = ["Scheduler"]

_log = logging.getLogger("loopml.pipelines")


def _default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Scheduler(StoreService):
    """Cron schedules and triggers in the store that ``settings`` names, and their runner.

    Args:
        settings: where the store is (default: the environment and loopml.toml).
        name: how this scheduler signs the fires it claims (default ``host:pid``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(settings)
        self.name = rows.check_name("scheduler name", name) if name else _default_name()

    # -- defining schedules -----------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        pipeline_ref: str,
        cron: str,
        *,
        params: Mapping[str, Any] | None = None,
        executor: str = "local",
    ) -> Schedule:
        """Run ``pipeline_ref`` at every slot of the cron expression ``cron`` (UTC).

        Raises:
            ValidationError: a bad name, cron expression, reference, params or executor.
            AlreadyExistsError: a schedule with that name exists.
        """
        parse_cron(cron)
        return self._add(name, "cron", cron.strip(), pipeline_ref, params, executor)

    def add_trigger(
        self,
        name: str,
        pipeline_ref: str,
        *,
        on_dataset: str | None = None,
        on_event: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "local",
    ) -> Schedule:
        """Run ``pipeline_ref`` once per new version of a dataset, or per event of a name.

        Versions and events that exist when the trigger is created do not fire it.

        Raises:
            ValidationError: not exactly one of ``on_dataset``/``on_event``, or bad input.
            AlreadyExistsError: a schedule with that name exists.
        """
        if (on_dataset is None) == (on_event is None):
            raise ValidationError("a trigger needs exactly one of on_dataset or on_event")
        if on_dataset is not None:
            spec = rows.check_name("dataset name", on_dataset)
            if "@" in spec:
                raise ValidationError(f"trigger dataset must be a name without '@'; got {spec!r}")
            return self._add(name, "dataset", spec, pipeline_ref, params, executor)
        spec = rows.check_name("event name", on_event)
        return self._add(name, "event", spec, pipeline_ref, params, executor)

    def _add(
        self,
        name: str,
        kind: str,
        spec: str,
        pipeline_ref: str,
        params: Mapping[str, Any] | None,
        executor: str,
    ) -> Schedule:
        values = {
            "name": rows.check_name("schedule name", name),
            "kind": kind,
            "spec": spec,
            "pipeline_ref": rows.check_pipeline_ref(pipeline_ref),
            "params": rows.check_params(params),
            "executor": rows.check_executor(executor),
        }
        return guarded(
            self.settings,
            self.store,
            "schedule.add",
            f"schedule:{name}",
            lambda c: rows.insert_schedule(c, values),
            after=values,
        )

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``; NotFoundError if there is none."""
        with self.store.read() as conn:
            return rows.get_schedule(conn, name)

    def list(self) -> builtins.list[Schedule]:
        """Every schedule and trigger, by name."""
        with self.store.read() as conn:
            return rows.list_schedules(conn)

    def remove(self, name: str) -> None:
        """Delete a schedule and its fire history; NotFoundError if there is none."""
        before = self.get(name)
        guarded(
            self.settings,
            self.store,
            "schedule.remove",
            f"schedule:{name}",
            lambda c: rows.delete_schedule(c, name),
            before={"kind": before.kind, "spec": before.spec, "pipeline": before.pipeline_ref},
        )

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Turn a schedule on or off; a disabled schedule never fires."""
        return guarded(
            self.settings,
            self.store,
            "schedule.enable",
            f"schedule:{name}",
            lambda c: rows.set_enabled(c, name, enabled),
            after={"enabled": enabled},
        )

    # -- events and history -----------------------------------------------------------

    def emit_event(self, name: str, payload: Any = None, *, source: str = "user") -> int:
        """Record an event named ``name``; return its id. ``payload`` must be JSON-able."""
        return emit(self.settings, self.store, name, payload, source)

    def events(self, name: str | None = None, limit: int = 100) -> builtins.list[Event]:
        """Events, newest first, of one name or all."""
        with self.store.read() as conn:
            return list_events(conn, name, limit)

    def fires(self, name: str | None = None, limit: int = 100) -> builtins.list[Fire]:
        """Fires, newest first, of the schedule ``name`` or of all."""
        with self.store.read() as conn:
            return rows.list_fires(conn, name, limit)

    # -- running ------------------------------------------------------------------------

    def tick(self, now: dt.datetime | None = None) -> builtins.list[Fire]:
        """Fire every due slot of every enabled schedule once; return the fires this
        scheduler claimed (slots another scheduler claimed are skipped).

        ``now`` decides which cron slot is due (default: the clock; naive means UTC).
        """
        return self._tick(now, None)

    def _tick(
        self, now: dt.datetime | None, on_fire: Callable[[Fire], None] | None
    ) -> builtins.list[Fire]:
        moment = dt.datetime.now(dt.UTC) if now is None else now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        with self.store.read() as conn:
            schedules = rows.list_schedules(conn, enabled_only=True)
        fired: builtins.list[Fire] = []
        for schedule in schedules:
            due = _ticks.due(self.store, schedule, moment)
            for slot, position in due.slots:
                fire = _ticks.fire(
                    self.store, schedule, slot, position, by=self.name, run=self._run
                )
                if fire is not None:
                    fired.append(fire)
                    if on_fire is not None:
                        on_fire(fire)
            if due.settle is not None:
                self._advance(schedule.id, due.settle)
        return fired

    def _advance(self, schedule_id: str, position: int) -> None:
        self.store.transact(lambda c: rows.advance_cursor(c, schedule_id, position))

    def _run(self, schedule: Schedule, slot: str) -> Any:
        """Run the schedule's pipeline as ``loopml run`` would, signed with the slot."""
        return run_ref(
            schedule.pipeline_ref,
            params=schedule.params,
            executor=schedule.executor,
            settings=self.settings,
            started_by=f"schedule:{schedule.name}@{slot}",
        )

    def run(
        self,
        *,
        interval_s: float = 30.0,
        max_ticks: int | None = None,
        stop: threading.Event | None = None,
        on_fire: Callable[[Fire], None] | None = None,
    ) -> int:
        """Tick every ``interval_s`` seconds until ``max_ticks`` ticks, ``stop`` is set, or
        Ctrl-C; return the number of ticks.

        ``on_fire`` is called with each fire as its run ends. A failed pipeline run is
        recorded on its fire; any other error in a tick (the database away a moment) is
        logged and the next tick tries again. Keep ``interval_s`` under 60 so that every
        cron minute is seen.
        """
        return repeat(
            lambda: self._tick(None, on_fire),
            interval_s=interval_s,
            max_ticks=max_ticks,
            stop=stop,
            name=f"scheduler {self.name}",
            log=_log,
        )
