"""The base every domain service shares: settings, the two stores, who is acting."""

from __future__ import annotations

from typing import Self

from loopml.artifacts import ArtifactStore
from loopml.core import Settings, load_settings
from loopml.governance._identity import resolve_identity
from loopml.governance._roles import Identity
from loopml.store import MetadataStore, open_store

__all__ = ["StoreService"]


class StoreService:
    """Settings, a metadata store and an artifact store opened on first use, and the
    acting identity. Use it as a context manager, or call :meth:`close`.

    ``identity`` is resolved again on each use (a revoked token stops working at once)
    unless one is given to the constructor. ``create_store=False`` makes a missing
    database an error instead of creating it, for commands that only read.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        identity: Identity | None = None,
        create_store: bool = True,
    ) -> None:
        self.settings = settings or load_settings()
        self._identity = identity
        self._create_store = create_store
        self._store: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None

    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            self._store = open_store(self.settings.db_url, create=self._create_store)
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = ArtifactStore(self.settings.artifacts_url)
        return self._artifacts

    @property
    def identity(self) -> Identity:
        """Who acts."""
        if self._identity is not None:
            return self._identity
        return resolve_identity(self.settings, self.store)

    def close(self) -> None:
        """Release the database connections."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
