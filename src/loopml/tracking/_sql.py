"""Inserts and upserts that SQLite and PostgreSQL both run natively (ON CONFLICT).

Statements are built once per dialect and reused: building an upsert costs more
than running it on a small batch.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from loopml.core import ArtifactRef
from loopml.store import schema

__all__ = ["insert_ignore", "upsert_artifacts"]


def _insert(dialect: str, table: Table) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


@functools.cache
def _insert_ignore(dialect: str, table: Table) -> Any:
    return _insert(dialect, table).on_conflict_do_nothing()


@functools.cache
def _upsert(dialect: str, table: Table, keys: tuple[str, ...], values: tuple[str, ...]) -> Any:
    statement = _insert(dialect, table)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: new[name] for name in values}
    )


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping any whose primary key exists already."""
    if rows:
        conn.execute(_insert_ignore(conn.dialect.name, table), rows)


def upsert_artifacts(conn: Connection, run_id: str, refs: list[ArtifactRef]) -> None:
    """Record artifact files of a run; logging a path again points it at the new bytes."""
    statement = _upsert(
        conn.dialect.name, schema.run_artifacts, ("run_id", "path"), ("digest", "size")
    )
    conn.execute(
        statement,
        [{"run_id": run_id, "path": r.path, "digest": r.digest, "size": r.size} for r in refs],
    )
