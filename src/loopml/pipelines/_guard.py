"""Changes made on someone's behalf: authorized first, audited in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from loopml.core import Settings
from loopml.governance import append_audit, require
from loopml.store import MetadataStore

__all__ = ["guarded"]

T = TypeVar("T")


def guarded(
    settings: Settings,
    store: MetadataStore,
    action: str,
    target: str,
    work: Callable[[Connection], T],
    *,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> T:
    """Check the caller may do ``action``, then run ``work`` and its audit row atomically."""
    identity = require(settings, store, action)

    def audited(conn: Connection) -> T:
        result = work(conn)
        append_audit(
            conn,
            actor=identity.name,
            action=action,
            target=target,
            before=before,
            after=after,
            reason=reason,
        )
        return result

    return store.transact(audited)
