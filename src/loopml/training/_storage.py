"""Optuna study storage in loopml's own metadata database.

Optuna's tables (``studies``, ``trials``, ``trial_params``, ``version_info`` ...)
live beside loopml's, in the same SQLite file or PostgreSQL schema, so every process
and Ray worker that can reach the loopml store can join a study.

Two databases' worth of care:

* Optuna and loopml both keep their schema with Alembic, in a table both call
  ``alembic_version``; that table is loopml's. loopml migrates its store first, then
  creates Optuna's tables itself (in one write transaction, serialised across
  processes) and stamps Optuna's ``version_info``; Optuna's own Alembic check is
  skipped, and replaced by a check of ``version_info.schema_version``. Never run
  ``optuna storage upgrade`` on a loopml database.
* On SQLite every Optuna transaction begins with ``BEGIN IMMEDIATE`` behind a 30 s
  busy timeout, as loopml's do, so parallel processes queue for the write lock
  instead of failing with "database is locked". PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select, text

from loopml.core import BackendError, Settings, load_settings

if TYPE_CHECKING:
    import optuna
    from sqlalchemy import Connection

__all__ = ["study_storage"]

_SQLITE_TIMEOUT_S = 30
_PG_LOCK = 7_201_300_101  # advisory lock serialising the creation of Optuna's tables
_storages: dict[str, optuna.storages.RDBStorage] = {}
_lock = threading.Lock()


def _create_tables(conn: Connection) -> None:
    import optuna
    from optuna.storages._rdb import models

    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_LOCK})"))
    models.BaseModel.metadata.create_all(conn)
    info = models.VersionInfoModel.__table__
    found = conn.execute(select(info.c.schema_version, info.c.library_version)).first()
    if found is None:
        conn.execute(
            info.insert().values(
                version_info_id=1,
                schema_version=models.SCHEMA_VERSION,
                library_version=optuna.__version__,
            )
        )
    elif found[0] != models.SCHEMA_VERSION:
        raise BackendError(
            f"the Optuna tables in this loopml database have schema version {found[0]} "
            f"(made by optuna {found[1]}); optuna {optuna.__version__} needs "
            f"{models.SCHEMA_VERSION}: use the optuna version that made them, or drop the "
            "Optuna tables (studies, trials, ...) to start over"
        )


def _sqlite_hooks(engine: Any) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the hooks were attached are dropped


def study_storage(settings: Settings | None = None) -> optuna.storages.RDBStorage:
    """Optuna storage on the loopml database that ``settings`` names (one per process).

    Pass it to ``optuna.create_study``/``optuna.load_study`` to work on the studies
    that :func:`~loopml.training.tune` runs.

    Raises:
        ConfigError: a bad database URL, or PostgreSQL without ``loopml[postgres]``.
        BackendError: the database cannot be reached, or holds Optuna tables of
            another schema version.
    """
    from loopml.tracking import Client

    resolved = settings or load_settings()
    store = Client.default(resolved).store  # migrated, so alembic_version is loopml's
    with _lock:
        cached = _storages.get(store.url)
        if cached is not None:
            return cached
        import optuna

        store.transact(_create_tables)
        sqlite = store.dialect == "sqlite"
        engine_kwargs: dict[str, Any] = (
            {
                "connect_args": {
                    "timeout": _SQLITE_TIMEOUT_S,
                    "isolation_level": None,  # the "begin" hook opens transactions
                    "check_same_thread": False,
                }
            }
            if sqlite
            else {"pool_pre_ping": True}
        )
        try:
            storage = optuna.storages.RDBStorage(
                store.url,
                engine_kwargs=engine_kwargs,
                skip_compatibility_check=True,
                skip_table_creation=True,
            )
        except Exception as exc:
            raise BackendError(
                f"cannot open the Optuna storage on {store.display_url}: {exc}"
            ) from exc
        if sqlite:
            _sqlite_hooks(storage.engine)
        _storages[store.url] = storage
        return storage
