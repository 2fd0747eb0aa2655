"""Schedules and their fires as rows: the records, the input checks and the SQL.

A schedule is data, not code: a cron expression, a dataset name or an event name,
plus the pipeline to run (by reference, so any scheduler process can load it). The
:class:`~loopml.pipelines._scheduler.Scheduler` drives them; this module only reads
and writes rows, each function inside the caller's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from loopml.compute import EXECUTOR_KINDS
from loopml.core import AlreadyExistsError, NotFoundError, ValidationError, new_id, now_ms
from loopml.store import schema

__all__ = [
    "KINDS",
    "Fire",
    "Schedule",
    "check_executor",
    "check_name",
    "check_params",
    "check_pipeline_ref",
    "dump_payload",
]

KINDS = ("cron", "dataset", "event")
S, F, E = schema.schedules, schema.schedule_fires, schema.events
_IDENT = r"[A-Za-z_]\w*"
_MODULE = re.compile(rf"^{_IDENT}(\.{_IDENT})*$")
_ATTR = re.compile(rf"^{_IDENT}$")  # the loader looks up one attribute, so no dots


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule or a trigger, as stored.

    ``spec`` is the cron expression, the dataset name or the event name (by ``kind``).
    ``cursor`` is how far the schedule has handled its source: the newest dataset
    version number, the newest event id, or the epoch ms of the last cron slot fired.
    """

    id: str
    name: str
    kind: str
    spec: str
    pipeline_ref: str
    params: dict[str, Any]
    executor: str
    enabled: bool
    created_ms: int
    cursor: int


@dataclass(frozen=True, slots=True)
class Fire:
    """One slot a schedule fired: who claimed it and how the pipeline run ended.

    ``status`` is ``running`` while the pipeline runs, then ``succeeded`` or ``failed``.
    """

    schedule: str
    schedule_id: str
    slot: str
    scheduler: str
    status: str
    pipeline_run_id: str | None
    error: str | None
    created_ms: int


# -- checks ------------------------------------------------------------------------


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is 1-256 printable characters, not blank."""
    if not isinstance(name, str) or not name.strip() or len(name) > 256 or not name.isprintable():
        raise ValidationError(f"{kind} must be 1-256 printable characters; got {name!r}")
    return name


def check_executor(executor: object) -> str:
    """Return ``executor`` if it names one of loopml's executors."""
    if executor not in EXECUTOR_KINDS:
        raise ValidationError(
            f"executor must be one of {', '.join(EXECUTOR_KINDS)}; got {executor!r}"
        )
    return str(executor)


def check_pipeline_ref(ref: object) -> str:
    """Return ``ref`` if it has the shape ``module:attr`` or ``path/to/file.py:attr``.

    Only the shape is checked: the scheduler loads the pipeline when a slot fires,
    possibly on another machine, so it need not import here.
    """
    where, _, attr = ref.rpartition(":") if isinstance(ref, str) else ("", "", "")
    if not where or not _ATTR.match(attr) or not (where.endswith(".py") or _MODULE.match(where)):
        raise ValidationError(
            f"pipeline reference must be 'module:attr' or 'path/to/file.py:attr'; got {ref!r}"
        )
    return str(ref)


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``params`` as a dict with string keys and JSON values."""
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ValidationError(f"params must map names (strings) to values; got {params!r}")
    dump_payload("params", dict(params))
    return dict(params)


def dump_payload(kind: str, value: Any) -> str:
    """``value`` as JSON text; ValidationError if it cannot be JSON."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise ValidationError(f"{kind} must be JSON-serialisable: {exc}; got {value!r}") from exc


# -- schedules ---------------------------------------------------------------------


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row.id,
        name=row.name,
        kind=row.kind,
        spec=row.spec,
        pipeline_ref=row.pipeline_ref,
        params=orjson.loads(row.params),
        executor=row.executor,
        enabled=bool(row.enabled),
        created_ms=row.created_ms,
        cursor=row.cursor,
    )


def newest_position(conn: Connection, kind: str, spec: str) -> int:
    """Where a new trigger starts: the newest version of the dataset or id of the event."""
    if kind == "dataset":
        D, V = schema.datasets, schema.dataset_versions
        query = select(func.max(V.c.version)).join(D, D.c.id == V.c.dataset_id)
        return int(conn.scalar(query.where(D.c.name == spec)) or 0)
    if kind == "event":
        return int(conn.scalar(select(func.max(E.c.id)).where(E.c.name == spec)) or 0)
    return 0


def insert_schedule(conn: Connection, values: dict[str, Any]) -> Schedule:
    """Store a new schedule; AlreadyExistsError if the name is taken."""
    if conn.scalar(select(S.c.id).where(S.c.name == values["name"])) is not None:
        raise AlreadyExistsError(f"a schedule named {values['name']!r} already exists")
    row = {
        "id": new_id(),
        "enabled": 1,
        "created_ms": now_ms(),
        "cursor": newest_position(conn, values["kind"], values["spec"]),
        **values,
        "params": orjson.dumps(values["params"]).decode(),
    }
    conn.execute(S.insert().values(**row))
    return get_schedule(conn, values["name"])


def get_schedule(conn: Connection, name: str) -> Schedule:
    """The schedule called ``name``; NotFoundError if there is none."""
    row = conn.execute(select(S).where(S.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no schedule named {name!r}")
    return _schedule(row)


def list_schedules(conn: Connection, *, enabled_only: bool = False) -> list[Schedule]:
    """Every schedule, by name."""
    query = select(S).order_by(S.c.name)
    if enabled_only:
        query = query.where(S.c.enabled == 1)
    return [_schedule(row) for row in conn.execute(query)]


def delete_schedule(conn: Connection, name: str) -> None:
    """Delete a schedule and its fire history."""
    schedule = get_schedule(conn, name)
    conn.execute(F.delete().where(F.c.schedule_id == schedule.id))
    conn.execute(S.delete().where(S.c.id == schedule.id))


def set_enabled(conn: Connection, name: str, enabled: bool) -> Schedule:
    """Turn a schedule on or off."""
    schedule = get_schedule(conn, name)
    conn.execute(update(S).where(S.c.id == schedule.id).values(enabled=int(enabled)))
    return get_schedule(conn, name)


def advance_cursor(conn: Connection, schedule_id: str, position: int) -> None:
    """Move a schedule's cursor forward to ``position`` (never backward)."""
    conn.execute(
        update(S).where(S.c.id == schedule_id, S.c.cursor < position).values(cursor=position)
    )


# -- fires ---------------------------------------------------------------------------


def insert_fire(
    conn: Connection, schedule_id: str, slot: str, scheduler: str, created_ms: int
) -> None:
    """Claim ``slot``: the primary key makes a second claim fail with IntegrityError."""
    conn.execute(
        F.insert().values(
            schedule_id=schedule_id,
            slot=slot,
            scheduler=scheduler,
            pipeline_run_id=None,
            status="running",
            error=None,
            created_ms=created_ms,
        )
    )


def finish_fire(
    conn: Connection,
    schedule_id: str,
    slot: str,
    status: str,
    run_id: str | None,
    error: str | None,
) -> None:
    """Record how the pipeline run of a claimed slot ended."""
    conn.execute(
        update(F)
        .where(F.c.schedule_id == schedule_id, F.c.slot == slot)
        .values(status=status, pipeline_run_id=run_id, error=error)
    )


def list_fires(conn: Connection, name: str | None, limit: int) -> list[Fire]:
    """Fires, newest first, of one schedule or of all."""
    query = select(F, S.c.name).join(S, S.c.id == F.c.schedule_id)
    if name is not None:
        query = query.where(S.c.id == get_schedule(conn, name).id)
    query = query.order_by(F.c.created_ms.desc(), F.c.slot.desc()).limit(limit)
    return [
        Fire(
            schedule=row.name,
            schedule_id=row.schedule_id,
            slot=row.slot,
            scheduler=row.scheduler,
            status=row.status,
            pipeline_run_id=row.pipeline_run_id,
            error=row.error,
            created_ms=row.created_ms,
        )
        for row in conn.execute(query)
    ]


def fired_slots(conn: Connection, schedule_id: str, slots: list[str]) -> set[str]:
    """Which of ``slots`` the schedule has already fired."""
    if not slots:
        return set()
    query = select(F.c.slot).where(F.c.schedule_id == schedule_id, F.c.slot.in_(slots))
    return set(conn.scalars(query))


# -- sources ------------------------------------------------------------------------


def new_versions(conn: Connection, dataset: str, after: int) -> list[int]:
    """Version numbers of ``dataset`` above ``after``, oldest first."""
    D, V = schema.datasets, schema.dataset_versions
    query = (
        select(V.c.version)
        .join(D, D.c.id == V.c.dataset_id)
        .where(D.c.name == dataset, V.c.version > after)
        .order_by(V.c.version)
    )
    return [int(v) for v in conn.scalars(query)]
