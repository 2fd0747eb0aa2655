"""Named events: what event triggers react to.

Any layer above the store can raise one (monitoring raises drift alerts with
:func:`emit_event`); a scheduler fires each trigger once per matching event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from loopml.core import Settings, load_settings, now_ms
from loopml.pipelines._schedules import check_name, dump_payload
from loopml.store import MetadataStore, open_store, schema

__all__ = ["Event", "emit_event"]

E = schema.events


@dataclass(frozen=True, slots=True)
class Event:
    """A named event (a drift alert, a manual nudge) with its JSON payload."""

    id: int
    name: str
    payload: Any
    source: str
    created_ms: int


def insert_event(conn: Connection, name: str, payload: str, source: str) -> int:
    """Store an event; return its id."""
    result = conn.execute(
        E.insert().values(name=name, payload=payload, source=source, created_ms=now_ms())
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT always has one
    return int(key[0])


def list_events(
    conn: Connection, name: str | None, limit: int, *, after: int = 0, oldest_first: bool = False
) -> list[Event]:
    """Events with id above ``after``, of one name or all; newest first unless asked."""
    query = select(E).where(E.c.id > after)
    if name is not None:
        query = query.where(E.c.name == name)
    query = query.order_by(E.c.id if oldest_first else E.c.id.desc()).limit(limit)
    return [
        Event(
            id=row.id,
            name=row.name,
            payload=orjson.loads(row.payload),
            source=row.source,
            created_ms=row.created_ms,
        )
        for row in conn.execute(query)
    ]


def settled_event_id(conn: Connection, name: str, after: int, before_ms: int) -> int:
    """The newest id, above ``after``, of events named ``name`` stamped before ``before_ms``."""
    query = select(func.max(E.c.id)).where(
        E.c.name == name, E.c.id > after, E.c.created_ms < before_ms
    )
    return int(conn.scalar(query) or after)


def emit(settings: Settings, store: MetadataStore, name: str, payload: Any, source: str) -> int:
    """Check and store an event in ``store`` (an audited change); return its id."""
    from loopml.pipelines._guard import guarded

    check_name("event name", name)
    check_name("event source", source)
    text = dump_payload("event payload", {} if payload is None else payload)
    return guarded(
        settings,
        store,
        "event.emit",
        f"event:{name}",
        lambda c: insert_event(c, name, text, source),
        after={"source": source},
    )


def emit_event(
    name: str, payload: Any = None, *, source: str = "user", settings: Settings | None = None
) -> int:
    """Record an event named ``name`` (a drift alert, say) for event triggers; return its id.

    ``payload`` must be JSON-able (None is stored as ``{}``).

    Raises:
        ValidationError: a bad name or source, or a payload that is not JSON-able.
    """
    resolved = settings or load_settings()
    store = open_store(resolved.db_url)
    try:
        return emit(resolved, store, name, payload, source)
    finally:
        store.close()
