"""Engines for the two supported databases, tuned for many small writers.

SQLite runs in WAL mode with a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing when a
read transaction tries to upgrade to a write (SQLite's classic "database is
locked"). PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from loopml.core import BackendError, ConfigError

__all__ = ["WRITE_OPTION", "make_engine", "normalize_url", "sqlite_path"]

# Execution option that marks a connection's transaction as a write.
WRITE_OPTION = "loopml_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Return ``url`` with the driver loopml uses (psycopg 3 for PostgreSQL).

    Raises:
        ConfigError: the URL does not parse or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} does not parse: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2", "psycopg"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if importlib.util.find_spec("psycopg") is None:
            raise ConfigError(
                f"database URL {url!r} needs PostgreSQL support: pip install 'loopml[postgres]'"
            )
    elif backend != "sqlite":
        raise ConfigError(
            f"database URL {url!r}: expected sqlite:/// or postgresql://, got {backend}://"
        )
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """Return the file of a file-backed SQLite URL, or None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create the folder for SQLite file {path}: {exc}") from exc
    options: dict[str, Any] = {
        # The driver must not open transactions itself; the "begin" hook below does.
        "connect_args": {
            "isolation_level": None,
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        },
    }
    if path is None:  # in-memory: one connection per checkout would be a fresh empty db
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if path is not None:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives an application crash with no loss; a power cut may
            # lose the last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def make_engine(url: str) -> Engine:
    """Create an engine for a ``sqlite:///`` or ``postgresql://`` URL.

    Raises:
        ConfigError: unsupported or malformed URL, or a missing driver extra.
    """
    normalized = normalize_url(url)
    if make_url(normalized).get_backend_name() == "sqlite":
        return _sqlite_engine(normalized)
    return create_engine(normalized, pool_pre_ping=True, pool_size=5, max_overflow=10)
