"""The metadata store on SQLite and PostgreSQL: migrations, transactions, bad URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

import loopml.store
from loopml.core import BackendError, ConfigError, NotFoundError
from loopml.store import HEAD_REVISION, open_store, upgrade_store

EXPECTED_TABLES = {
    "alembic_version",
    "dataset_splits",
    "dataset_versions",
    "datasets",
    "events",
    "experiments",
    "latest_metrics",
    "metrics",
    "params",
    "pipeline_runs",
    "run_artifacts",
    "runs",
    "schedule_fires",
    "schedules",
    "step_runs",
    "tags",
    "validation_attempts",
}


def test_head_revision_matches_migration_files() -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(loopml.store.__file__).parent / "migrations")
    )
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_open_store_migrates_on_first_use(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert set(store.table_names()) >= EXPECTED_TABLES
        assert store.revision() == HEAD_REVISION
    finally:
        store.close()


def test_migrations_build_exactly_the_schema_the_code_declares(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = compare_metadata(context, loopml.store.schema.metadata)
        assert differences == []
    finally:
        store.close()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    store, before = upgrade_store(db_url)
    store.close()
    assert before == "none"
    store, before = upgrade_store(db_url)
    store.close()
    assert before == HEAD_REVISION


def test_transaction_rolls_back_on_error(db_url: str) -> None:
    store = open_store(db_url)

    def insert_then_fail(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            text("INSERT INTO experiments (id, name, created_ms) VALUES ('x', 'x', 0)")
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.transact(insert_then_fail)
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM experiments")).scalar() == 0
    store.close()


def test_sad_missing_sqlite_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no loopml store at .*nothing.db"):
        open_store(f"sqlite:///{tmp_path / 'nothing.db'}", create=False)
    assert not (tmp_path / "nothing.db").exists()


def test_sad_unsupported_url() -> None:
    with pytest.raises(ConfigError, match="expected sqlite:/// or postgresql://, got mysql://"):
        open_store("mysql://localhost/x")


def test_sad_malformed_url() -> None:
    with pytest.raises(ConfigError, match="does not parse"):
        open_store("not a url")


def test_sad_unreachable_postgres_is_backend_error() -> None:
    with pytest.raises(BackendError, match="127.0.0.1:1"):
        open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


def test_sqlite_runs_in_wal_mode(sqlite_settings: object, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'wal.db'}")
    with store.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    store.close()
