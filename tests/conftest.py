"""Shared fixtures: a fresh store per test on SQLite and, where reachable, PostgreSQL.

PostgreSQL tests read ``LOOPML_TEST_POSTGRES_URL``. Without it they skip with a
visible reason, except on CI (``CI=true``), where a missing or unreachable
PostgreSQL fails them: CI must exercise both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.core import Settings, load_settings

POSTGRES_ENV = "LOOPML_TEST_POSTGRES_URL"


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if _on_ci():
            pytest.fail(f"{POSTGRES_ENV} is not set on CI; the PostgreSQL tests must run there")
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        if _on_ci():
            pytest.fail(f"PostgreSQL at {base} is unreachable on CI: {exc}")
        pytest.skip(f"PostgreSQL at {base} is unreachable: {exc}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database URL, once per supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings on a fresh store of each database, with a temporary artifact folder."""
    return load_settings(
        project_dir=tmp_path,
        environ={},
        home=tmp_path / ".loopml",
        db_url=db_url,
        system_metrics=False,
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite store only (for tests about SQLite itself)."""
    return load_settings(project_dir=tmp_path, environ={}, system_metrics=False)
