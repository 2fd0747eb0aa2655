"""The metadata store: one engine, short transactions, retries on a busy SQLite file."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError, OperationalError

from loopml.core import BackendError, NotFoundError
from loopml.store._engine import WRITE_OPTION, make_engine, normalize_url, sqlite_path
from loopml.store._migrate import current_revision, upgrade

__all__ = ["MetadataStore", "open_store", "upgrade_store"]

T = TypeVar("T")
_RETRIES = 8


def _is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


class MetadataStore:
    """A handle on loopml's metadata database.

    Use :meth:`transact` for writes (retried when SQLite stays busy past its
    timeout) and :meth:`read` for queries. Build one with :func:`open_store`.
    """

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def transact(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction and commit; retry it if the database is busy.

        ``work`` may run more than once, so it must only touch the database.

        Raises:
            BackendError: the database failed, or stayed locked through every retry.
        """
        for attempt in range(_RETRIES):
            try:
                with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
                    with conn.begin():
                        return work(conn)
            except OperationalError as exc:
                if not _is_busy(exc) or attempt == _RETRIES - 1:
                    raise BackendError(f"write to {self.display_url} failed: {exc.orig}") from exc
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction, closed on exit.

        Raises:
            BackendError: the database failed.
        """
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise BackendError(f"read from {self.display_url} failed: {exc.orig}") from exc

    @property
    def display_url(self) -> str:
        """The URL with any password masked, safe for logs and messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def revision(self) -> str | None:
        """The schema revision, or None for a database with no loopml schema."""
        with self.engine.connect() as conn:
            return current_revision(conn)

    def upgrade(self) -> str:
        """Apply pending migrations; return the revision the schema was at before."""
        try:
            return upgrade(self.engine)
        except DBAPIError as exc:
            raise BackendError(f"migrating {self.display_url} failed: {exc.orig}") from exc

    def table_names(self) -> list[str]:
        """Names of the tables in the database (for checks and diagnostics)."""
        return sorted(inspect(self.engine).get_table_names())

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_store(url: str, *, create: bool = True) -> MetadataStore:
    """Open the metadata store at ``url``, migrating it to the newest schema.

    Args:
        url: ``sqlite:///path`` or ``postgresql://...``.
        create: when False, a SQLite file that does not exist, or a database with
            no loopml schema, raises NotFoundError instead of being created.

    Raises:
        NotFoundError: ``create`` is False and there is no store at ``url``.
        ConfigError: the URL is malformed or needs a missing extra.
        BackendError: the database cannot be reached or migrated.
    """
    normalized = normalize_url(url)
    path = sqlite_path(normalized)
    if not create and path is not None and not path.exists():
        raise NotFoundError(f"no loopml store at {path}: log a run or run `loopml db upgrade`")
    store = MetadataStore(normalized, make_engine(normalized))
    try:
        if create:
            store.upgrade()
        elif store.revision() is None:
            raise NotFoundError(f"no loopml store at {store.display_url}: run `loopml db upgrade`")
    except OperationalError as exc:
        store.close()
        raise BackendError(f"cannot reach the database at {store.display_url}: {exc.orig}") from exc
    except BaseException:
        store.close()
        raise
    return store


def upgrade_store(url: str) -> tuple[MetadataStore, str]:
    """Open (creating if needed) the store at ``url`` and migrate it.

    Returns:
        The open store and the revision it was at before (``"none"`` if it was empty).
    """
    normalized = normalize_url(url)
    store = MetadataStore(normalized, make_engine(normalized))
    try:
        before = store.upgrade()
    except BaseException:
        store.close()
        raise
    return store, before
