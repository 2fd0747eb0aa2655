"""The controller's lease: one controller acts per store.

A row in ``loop_lease`` names the owner and when its lease expires (wall clock). Taking
it is one ``UPDATE ... WHERE owner = me OR expires_ms < now``, after an ``INSERT ... ON
CONFLICT DO NOTHING`` that makes sure the row exists: on SQLite writers are serialized,
and on PostgreSQL a second updater waits on the row lock and then re-checks the
condition against the committed row, so exactly one contender wins. A holder renews
the lease from a heartbeat thread while it works; a crashed holder's lease runs out
after ``ttl_s`` and another controller takes over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import BackendError, ValidationError, now_ms
from loopml.store import MetadataStore, schema

__all__ = ["Lease", "LeaseHolder", "LeaseLostError"]

_L = schema.loop_lease
_log = logging.getLogger(__name__)


class LeaseLostError(BackendError):
    """Raised when a controller finds that another one holds the lease now."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, since when and until when (wall-clock ms)."""

    owner: str
    acquired_ms: int
    expires_ms: int


def default_owner() -> str:
    """``host:pid:random``: unique per controller, readable in ``loop status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _insert_missing(conn: Connection, name: str, owner: str) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    row = {"name": name, "owner": owner, "acquired_ms": 0, "expires_ms": 0}
    conn.execute(insert(_L).values(row).on_conflict_do_nothing(index_elements=["name"]))


class Lease:
    """The lease ``name`` in ``store``, for ``owner``, ``ttl_s`` long once taken."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        name: str = "controller",
        owner: str | None = None,
        ttl_s: float = 300.0,
    ) -> None:
        if ttl_s <= 0:
            raise ValidationError(f"lease ttl_s must be > 0; got {ttl_s}")
        self.store = store
        self.name = name
        self.owner = owner or default_owner()
        self.ttl_ms = int(ttl_s * 1000)
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self.lost = False

    def acquire(self) -> bool:
        """Take or renew the lease; False when another owner holds an unexpired one."""
        name, owner, ttl = self.name, self.owner, self.ttl_ms

        def work(conn: Connection) -> bool:
            _insert_missing(conn, name, owner)
            now = now_ms()
            result = conn.execute(
                sa.update(_L)
                .where(_L.c.name == name, sa.or_(_L.c.owner == owner, _L.c.expires_ms < now))
                .values(
                    acquired_ms=sa.case((_L.c.owner == owner, _L.c.acquired_ms), else_=now),
                    owner=owner,
                    expires_ms=now + ttl,
                )
            )
            return bool(result.rowcount == 1)

        held = self.store.transact(work)
        self.lost = self.lost and not held
        return held

    def release(self) -> None:
        """Give the lease up now (expire it), if this owner holds it."""
        self.stop_heartbeat()

        def work(conn: Connection) -> None:
            conn.execute(
                sa.update(_L)
                .where(_L.c.name == self.name, _L.c.owner == self.owner)
                .values(expires_ms=0)
            )

        self.store.transact(work)

    def holder(self) -> LeaseHolder | None:
        """Who holds the lease now; None when nobody holds an unexpired one."""
        with self.store.read() as conn:
            row = conn.execute(sa.select(_L).where(_L.c.name == self.name)).first()
        if row is None or row.expires_ms < now_ms():
            return None
        return LeaseHolder(row.owner, row.acquired_ms, row.expires_ms)

    def fence(self, conn: Connection) -> None:
        """Inside a write transaction: raise unless this owner still holds the lease, so
        a controller that lost it (paused past its ttl) cannot commit a decision."""
        row = conn.execute(
            sa.select(_L.c.owner, _L.c.expires_ms).where(_L.c.name == self.name)
        ).first()
        if row is None or row.owner != self.owner or row.expires_ms < now_ms():
            holder = "nobody" if row is None or row.expires_ms < now_ms() else row.owner
            raise LeaseLostError(
                f"controller {self.owner} lost the loop lease (held by {holder}); "
                "it stops without recording anything"
            )

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless this owner still holds the lease: called before
        every policy and every side effect, so a controller that lost the lease (its
        heartbeat found it taken, or it paused past its ttl) stops acting at once."""
        if self.lost:
            raise LeaseLostError(f"controller {self.owner} lost the loop lease; it stops acting")
        with self.store.read() as conn:
            self.fence(conn)

    # -- heartbeat -----------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Renew the lease every third of its ttl from a daemon thread until stopped."""
        if self._beat is not None and self._beat.is_alive():
            return
        # a thread that ended (it found the lease lost once) is replaced: a lease taken
        # again must be renewed again, or it runs out under a controller still acting
        self._beat = None
        self._stop.clear()
        self._beat = threading.Thread(target=self._renew, name="loopml-loop-lease", daemon=True)
        self._beat.start()

    def stop_heartbeat(self) -> None:
        if self._beat is None:
            return
        self._stop.set()
        self._beat.join()
        self._beat = None

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.acquire():
                    self.lost = True
                    _log.error("loop controller %s lost its lease", self.owner)
                    return
            except BackendError:  # the database blinked: try again next beat
                _log.exception("loop controller %s: renewing the lease failed", self.owner)
