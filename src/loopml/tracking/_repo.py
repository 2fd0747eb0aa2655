"""SQL for tracking records: experiments, runs and what hangs off them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from loopml.core import (
    ArtifactRef,
    Experiment,
    MetricPoint,
    NotFoundError,
    Run,
    RunStatus,
    new_id,
    now_ms,
)
from loopml.store import schema
from loopml.tracking._sql import insert_ignore, upsert_artifacts

__all__ = [
    "get_or_create_experiment",
    "list_experiments",
    "load_runs",
    "metric_history",
    "record_artifacts",
    "run_artifacts",
]

E, R = schema.experiments, schema.runs


def _experiment(row: Any) -> Experiment:
    return Experiment(id=row[0], name=row[1], created_ms=row[2])


def get_or_create_experiment(conn: Connection, name: str) -> Experiment:
    """Return the experiment called ``name``, creating it if needed (race-free)."""
    insert_ignore(conn, E, [{"id": new_id(), "name": name, "created_ms": now_ms()}])
    row = conn.execute(select(E.c.id, E.c.name, E.c.created_ms).where(E.c.name == name)).one()
    return _experiment(row)


def find_experiment(conn: Connection, name: str) -> Experiment:
    """Return the experiment called ``name``; NotFoundError if there is none."""
    row = conn.execute(select(E.c.id, E.c.name, E.c.created_ms).where(E.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no experiment named {name!r}")
    return _experiment(row)


def list_experiments(conn: Connection) -> list[tuple[Experiment, int, int | None]]:
    """Every experiment with its number of runs and the start of its newest run."""
    query = (
        select(E.c.id, E.c.name, E.c.created_ms, func.count(R.c.id), func.max(R.c.start_ms))
        .select_from(E.outerjoin(R, R.c.experiment_id == E.c.id))
        .group_by(E.c.id, E.c.name, E.c.created_ms)
        .order_by(E.c.created_ms, E.c.name)
    )
    return [(_experiment(row[:3]), row[3], row[4]) for row in conn.execute(query)]


_NAN = float("nan")  # metric values are stored NULL for NaN
_CHUNK = 5000  # ids per IN list: well under SQLite's and PostgreSQL's parameter limits


def _rows_for(conn: Connection, sql: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (whose IN list is ``{ids}``) for every id, in chunks, on the raw cursor.

    Loading a page of runs fetches tens of thousands of small rows; the DB-API
    cursor's fetchall is several times faster than row-by-row result objects.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.cursor()
    try:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            cursor.execute(sql.format(ids=", ".join([mark] * len(chunk))), chunk)
            rows.extend(cursor.fetchall())
        return rows
    finally:
        cursor.close()


RUN_COLUMNS = (
    R.c.id,
    R.c.experiment_id,
    R.c.name,
    R.c.status,
    R.c.start_ms,
    R.c.end_ms,
    R.c.parent_id,
    R.c.summary,
)


def runs_from_rows(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Runs for rows of :data:`RUN_COLUMNS`, with params, tags and latest metrics attached."""
    if not rows:
        return []
    params: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    open_ids = []
    for row in rows:
        if row[7] is None:  # still running: no summary yet
            open_ids.append(row[0])
            params[row[0]], metrics[row[0]], tags[row[0]] = {}, {}, {}
        else:
            summary = orjson.loads(row[7])
            values = summary["metrics"]
            if None in values.values():
                values = {k: _NAN if v is None else v for k, v in values.items()}
            params[row[0]], metrics[row[0]], tags[row[0]] = (
                summary["params"],
                values,
                summary["tags"],
            )
    for table, into in (("params", params), ("tags", tags), ("latest_metrics", metrics)):
        sql = f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({{ids}})"
        for run_id, key, value in _rows_for(conn, sql, open_ids):
            into[run_id][key] = _NAN if value is None else value
    return [
        Run(
            id=id_,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus(status),
            start_ms=start_ms,
            end_ms=end_ms,
            parent_id=parent_id,
            params=params[id_],
            metrics=metrics[id_],
            tags=tags[id_],
        )
        for id_, experiment_id, name, status, start_ms, end_ms, parent_id, _ in rows
    ]


def load_runs(conn: Connection, run_ids: list[str]) -> list[Run]:
    """Runs with params, tags and latest metrics, in the order of ``run_ids``."""
    rows = conn.execute(select(*RUN_COLUMNS).where(R.c.id.in_(run_ids))).all()
    order = {run_id: index for index, run_id in enumerate(run_ids)}
    return runs_from_rows(conn, sorted(rows, key=lambda row: order[row[0]]))


def resolve_run_id(conn: Connection, run_id: str) -> str:
    """The full id of the run whose id is or starts with ``run_id`` (at least 6 characters)."""
    if len(run_id) == 32:
        return run_id
    if len(run_id) < 6 or not run_id.isalnum():
        raise NotFoundError(f"no run with id {run_id!r}; give the id or its first 6+ characters")
    matches = list(conn.scalars(select(R.c.id).where(R.c.id.like(run_id + "%")).limit(2)))
    if not matches:
        raise NotFoundError(f"no run with id {run_id!r}")
    if len(matches) > 1:
        raise NotFoundError(f"run id prefix {run_id!r} matches more than one run; give more of it")
    return str(matches[0])


def get_run(conn: Connection, run_id: str) -> Run:
    """The run whose id is or starts with ``run_id``; NotFoundError if none."""
    runs = load_runs(conn, [resolve_run_id(conn, run_id)])
    if not runs:
        raise NotFoundError(f"no run with id {run_id!r}")
    return runs[0]


def metric_history(conn: Connection, run_id: str, key: str) -> list[MetricPoint]:
    M = schema.metrics
    query = (
        select(M.c.key, M.c.value, M.c.step, M.c.timestamp_ms)
        .where(M.c.run_id == run_id, M.c.key == key)
        .order_by(M.c.step, M.c.timestamp_ms, M.c.id)
    )
    return [
        MetricPoint(key=k, value=_NAN if v is None else v, step=s, timestamp_ms=t)
        for k, v, s, t in conn.execute(query)
    ]


def record_artifacts(conn: Connection, run_id: str, refs: Iterable[ArtifactRef]) -> None:
    upsert_artifacts(conn, run_id, list(refs))


def run_artifacts(conn: Connection, run_id: str) -> list[ArtifactRef]:
    A = schema.run_artifacts
    query = select(A.c.path, A.c.digest, A.c.size).where(A.c.run_id == run_id).order_by(A.c.path)
    return [ArtifactRef(path=p, digest=d, size=s) for p, d, s in conn.execute(query)]
