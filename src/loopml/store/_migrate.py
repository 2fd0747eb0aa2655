"""Schema migrations with Alembic, applied on first use and by ``loopml db upgrade``.

Checking the revision is one cheap query, so opening a store that is up to date
never imports Alembic. Concurrent first openings are safe: the upgrade runs in a
write transaction (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL),
and the second process finds the schema already at head.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from loopml.store._engine import WRITE_OPTION

__all__ = ["HEAD_REVISION", "current_revision", "upgrade"]

# Must name the newest file in migrations/versions (a test checks it against Alembic).
HEAD_REVISION = "0009"
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_201_300_001


def current_revision(connection: Connection) -> str | None:
    """Return the schema revision of the database, or None when it has no loopml schema."""
    try:
        with connection.begin():
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        return None
    return None if row is None else str(row[0])


def _run_alembic(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; return the revision it was at before.

    Returns ``"none"`` for an empty database.
    """
    with engine.connect() as probe:
        before = current_revision(probe)
    if before == HEAD_REVISION:
        return before
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            _run_alembic(connection)
    return before or "none"
