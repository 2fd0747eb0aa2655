"""Pipeline and step run records: the rows, their readers and their writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, update

from loopml.core import NotFoundError, ValidationError
from loopml.pipelines._values import ValueRef
from loopml.store import schema

__all__ = [
    "PipelineRunRecord",
    "StepRunRecord",
    "StepStatus",
    "find_cached",
    "get_pipeline_run",
    "insert_pipeline_run",
    "list_pipeline_runs",
    "list_pipelines",
    "update_pipeline_run",
    "update_step_run",
]

P = schema.pipeline_runs
S = schema.step_runs


class StepStatus:
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream step failed
    DONE = frozenset({SUCCEEDED, CACHED})


@dataclass(frozen=True)
class StepRunRecord:
    """One step of one pipeline run, as stored."""

    id: str
    name: str
    position: int
    status: str
    cache_key: str | None
    cached_from: str | None
    attempts: int
    inputs: dict[str, Any]
    outputs: dict[str, ValueRef]
    datasets: list[str]
    logs: str | None
    tracking_run_id: str | None
    error: str | None
    start_ms: int | None
    end_ms: int | None

    @property
    def duration_ms(self) -> int | None:
        if self.start_ms is None or self.end_ms is None:
            return None
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class PipelineRunRecord:
    """One pipeline run with its steps in run order."""

    id: str
    pipeline: str
    ref: str | None
    status: str
    params: dict[str, Any]
    executor: str
    cache: bool
    tracking_run_id: str | None
    code_version: str | None
    resumed_from: str | None
    started_by: str
    error: str | None
    start_ms: int
    end_ms: int | None
    steps: list[StepRunRecord] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_ms is None else self.end_ms - self.start_ms

    def step(self, name: str) -> StepRunRecord:
        for found in self.steps:
            if found.name == name:
                return found
        raise NotFoundError(f"pipeline run {self.id} has no step {name!r}")


def _step_from_row(row: Any) -> StepRunRecord:
    outputs = orjson.loads(row.outputs) if row.outputs else {}
    return StepRunRecord(
        id=row.id,
        name=row.name,
        position=row.position,
        status=row.status,
        cache_key=row.cache_key,
        cached_from=row.cached_from,
        attempts=row.attempts,
        inputs=orjson.loads(row.inputs),
        outputs={k: ValueRef.from_json(v) for k, v in outputs.items()},
        datasets=orjson.loads(row.datasets),
        logs=row.logs,
        tracking_run_id=row.tracking_run_id,
        error=row.error,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
    )


def _run_from_row(row: Any, steps: list[StepRunRecord]) -> PipelineRunRecord:
    return PipelineRunRecord(
        id=row.id,
        pipeline=row.pipeline,
        ref=row.ref,
        status=row.status,
        params=orjson.loads(row.params),
        executor=row.executor,
        cache=bool(row.cache),
        tracking_run_id=row.tracking_run_id,
        code_version=row.code_version,
        resumed_from=row.resumed_from,
        started_by=row.started_by,
        error=row.error,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        steps=steps,
    )


def insert_pipeline_run(conn: Connection, run: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    conn.execute(insert(P), [run])
    conn.execute(insert(S), steps)


def update_pipeline_run(conn: Connection, run_id: str, **values: Any) -> None:
    conn.execute(update(P).where(P.c.id == run_id).values(**values))


def update_step_run(conn: Connection, step_run_id: str, **values: Any) -> None:
    conn.execute(update(S).where(S.c.id == step_run_id).values(**values))


def find_cached(conn: Connection, key: str, from_run: str | None = None) -> StepRunRecord | None:
    """The newest succeeded step run with cache key ``key`` (in ``from_run`` if given)."""
    query = select(S).where(S.c.cache_key == key)
    if from_run is not None:  # a resumed run reused some steps itself: those count too
        query = query.where(
            S.c.pipeline_run_id == from_run,
            S.c.status.in_([StepStatus.SUCCEEDED, StepStatus.CACHED]),
        )
    else:
        query = query.where(S.c.status == StepStatus.SUCCEEDED)
    row = conn.execute(query.order_by(S.c.end_ms.desc()).limit(1)).first()
    return None if row is None else _step_from_row(row)


def _resolve_id(conn: Connection, run_id: str) -> str:
    if not isinstance(run_id, str) or len(run_id) < 6:
        raise ValidationError(f"pipeline run id must have at least 6 characters; got {run_id!r}")
    rows = conn.execute(select(P.c.id).where(P.c.id.startswith(run_id)).limit(2)).all()
    if not rows:
        raise NotFoundError(f"no pipeline run {run_id!r}")
    if len(rows) > 1:
        raise ValidationError(f"pipeline run id {run_id!r} is ambiguous; give more characters")
    return str(rows[0].id)


def get_pipeline_run(conn: Connection, run_id: str) -> PipelineRunRecord:
    """The run with ``run_id`` or a unique prefix of 6+ characters."""
    full_id = _resolve_id(conn, run_id)
    row = conn.execute(select(P).where(P.c.id == full_id)).one()
    steps = conn.execute(select(S).where(S.c.pipeline_run_id == full_id).order_by(S.c.position))
    return _run_from_row(row, [_step_from_row(s) for s in steps])


def list_pipeline_runs(
    conn: Connection, pipeline: str | None = None, limit: int = 50
) -> list[PipelineRunRecord]:
    """Runs newest first, without their steps."""
    query = select(P).order_by(P.c.start_ms.desc(), P.c.id).limit(limit)
    if pipeline is not None:
        query = query.where(P.c.pipeline == pipeline)
    return [_run_from_row(row, []) for row in conn.execute(query)]


def list_pipelines(conn: Connection) -> list[tuple[str, int, PipelineRunRecord]]:
    """Every pipeline that has run: its name, number of runs and newest run."""
    counts = conn.execute(
        select(P.c.pipeline, func.count(), func.max(P.c.start_ms)).group_by(P.c.pipeline)
    ).all()
    found = []
    for name, count, newest_ms in sorted(counts):
        row = conn.execute(
            select(P).where(P.c.pipeline == name, P.c.start_ms == newest_ms).limit(1)
        ).one()
        found.append((str(name), int(count), _run_from_row(row, [])))
    return found
