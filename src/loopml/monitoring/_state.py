"""The monitor's rows: a state (watermark) per deployment and window spec, its windows,
the log segments it has read, and the stored reports.

A pass reads the state and its ``version``, does its work, and commits only if
``version`` is unchanged (then bumps it); a concurrent pass that committed first makes
it start over, so no segment is ever counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from loopml.core import new_id, now_ms
from loopml.monitoring._window_state import WindowState
from loopml.store import MetadataStore, schema

__all__ = [
    "Conflict",
    "MonitorState",
    "commit_pass",
    "load_state",
    "load_window",
    "newest_window",
    "windows_of",
]

S = schema.monitor_states
W = schema.monitor_windows
G = schema.monitor_segments


class Conflict(Exception):
    """Another pass committed first; start over."""


@dataclass
class MonitorState:
    id: str
    deployment: str
    window_spec: str
    rows: int
    segments: int
    last_ts_ms: int | None
    labels_ms: int | None
    prediction_refs: dict[str, Any] = field(default_factory=dict)
    version: int = 0


def load_state(store: MetadataStore, deployment: str, window_spec: str) -> MonitorState:
    """The state of ``deployment`` and ``window_spec``, created when there is none."""
    query = sa.select(S).where(S.c.deployment == deployment, S.c.window_spec == window_spec)
    for _ in range(3):
        with store.read() as conn:
            row = conn.execute(query).first()
        if row is not None:
            return MonitorState(
                id=row.id,
                deployment=row.deployment,
                window_spec=row.window_spec,
                rows=int(row.rows),
                segments=int(row.segments),
                last_ts_ms=row.last_ts_ms,
                labels_ms=row.labels_ms,
                prediction_refs=json.loads(row.prediction_refs),
                version=int(row.version),
            )
        values = {
            "id": new_id(),
            "deployment": deployment,
            "window_spec": window_spec,
            "rows": 0,
            "segments": 0,
            "last_ts_ms": None,
            "labels_ms": None,
            "prediction_refs": "{}",
            "version": 0,
            "updated_ms": now_ms(),
        }

        def create(conn: sa.Connection, values: dict[str, Any] = values) -> None:
            conn.execute(S.insert(), values)

        try:
            store.transact(create)
        except sa.exc.IntegrityError:
            continue  # created by a concurrent pass: read it
    raise Conflict(f"monitoring state of {deployment!r} ({window_spec}) could not be created")


def load_window(store: MetadataStore, state_id: str, index: int) -> WindowState | None:
    query = sa.select(W).where(W.c.state_id == state_id, W.c.window_index == index)
    with store.read() as conn:
        row = conn.execute(query).first()
    return None if row is None else WindowState.from_row(row)


def windows_of(
    store: MetadataStore,
    state_id: str,
    *,
    last: int | None = None,
    containing: str | None = None,
    after: int | None = None,
    first: int | None = None,
) -> list[WindowState]:
    """The state's windows, oldest first: the ``last`` newest ones, or those whose sketch
    names model version ``containing``; ``after`` and ``first`` page through them from
    the oldest (the ``first`` oldest windows with an index above ``after``)."""
    query = sa.select(W).where(W.c.state_id == state_id)
    if containing is not None:
        query = query.where(W.c.sketch.contains(json.dumps(containing) + ":", autoescape=True))
    if after is not None:
        query = query.where(W.c.window_index > after)
    if last is not None:
        query = query.order_by(W.c.window_index.desc()).limit(last)
    elif first is not None:
        query = query.order_by(W.c.window_index).limit(first)
    with store.read() as conn:
        rows = list(conn.execute(query))
    return sorted((WindowState.from_row(r) for r in rows), key=lambda w: w.index)


def newest_window(store: MetadataStore, state_id: str) -> int | None:
    """The index of the state's newest window (None before any)."""
    query = sa.select(sa.func.max(W.c.window_index)).where(W.c.state_id == state_id)
    with store.read() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else int(found)


def commit_pass(
    store: MetadataStore,
    state: MonitorState,
    windows: Iterable[WindowState],
    segments: list[dict[str, Any]],
) -> None:
    """Store the windows touched, the segments read and the state's new watermark, only
    if no other pass committed since ``state`` was read (else :class:`Conflict`)."""
    touched = list(windows)
    stamp = now_ms()

    def work(conn: sa.Connection) -> None:
        moved = conn.execute(
            S.update()
            .where(S.c.id == state.id, S.c.version == state.version)
            .values(
                rows=state.rows,
                segments=state.segments,
                last_ts_ms=state.last_ts_ms,
                labels_ms=state.labels_ms,
                prediction_refs=json.dumps(state.prediction_refs, sort_keys=True),
                version=state.version + 1,
                updated_ms=stamp,
            )
        )
        if moved.rowcount != 1:
            raise Conflict(f"another monitoring pass of {state.deployment!r} committed first")
        if segments:
            conn.execute(G.insert(), [{**s, "state_id": state.id} for s in segments])
        for window in touched:
            values = {
                "start_ms": window.start_ms,
                "end_ms": window.end_ms,
                "rows": window.rows,
                "sketch": window.sketch_json(),
                "labels_digest": window.labels_digest,
                "performance": json.dumps(window.performance, sort_keys=True),
                "updated_ms": stamp,
            }
            if window.new:
                conn.execute(
                    W.insert().values(state_id=state.id, window_index=window.index, **values)
                )
            else:
                conn.execute(
                    W.update()
                    .where(W.c.state_id == state.id, W.c.window_index == window.index)
                    .values(**values)
                )

    store.transact(work)
    state.version += 1
    for window in touched:
        window.new = False
