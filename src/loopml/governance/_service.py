"""Users and API tokens: each change is authorized and audited in one transaction."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import NotFoundError, PermissionDeniedError, Settings, load_settings, now_ms
from loopml.governance import _records as rec
from loopml.governance._audit import (
    AuditEntry,
    AuditReport,
    append_audit,
    list_audit,
    lock_for_change,
    verify_audit,
)
from loopml.governance._identity import resolve_identity
from loopml.governance._records import IssuedToken, TokenInfo, User
from loopml.governance._roles import Identity, Role, authorize
from loopml.store import MetadataStore, open_store, schema

__all__ = ["Governance"]


class Governance:
    """Users, API tokens and the audit log of the store that ``settings`` names.

    Every mutation takes the acting :class:`Identity` (from :func:`resolve_identity`,
    or :meth:`identity`), authorizes it, and writes the change and its audit row in
    one transaction.
    """

    def __init__(self, settings: Settings | None = None, *, store: MetadataStore | None = None):
        self.settings = settings or load_settings()
        self._store = store
        self._lock = threading.Lock()

    @property
    def store(self) -> MetadataStore:
        """The metadata store, opened on first use (once, however many threads ask)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.db_url)
            return self._store

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.close()

    def identity(self) -> Identity:
        """Who is acting under these settings (see :func:`resolve_identity`)."""
        return resolve_identity(self.settings, self.store)

    # -- users -----------------------------------------------------------------

    def add_user(
        self, name: str, role: Role | str, *, actor: Identity, reason: str | None = None
    ) -> User:
        """Create a user (not with the bootstrap identity: see :meth:`bootstrap`)."""
        authorize(actor, "user.add")
        if actor.via == "bootstrap":
            raise PermissionDeniedError(
                "no users exist yet: create the first admin with Governance.bootstrap "
                "(`loopml users add NAME --role admin`)"
            )
        parsed = Role.parse(role)
        rec.check_name(name)
        return self.store.transact(lambda conn: rec.insert_user(conn, name, parsed, actor, reason))

    def bootstrap(
        self, name: str, *, actor: Identity, token_name: str = "bootstrap"
    ) -> IssuedToken:
        """Create the first user, an admin, with a token, while no users exist.

        Only the bootstrap identity (auth on, no token, no users) may do this; the
        user, the token and both audit rows are one transaction.
        """
        authorize(actor, "user.add")
        if actor.via != "bootstrap":
            raise PermissionDeniedError("bootstrap is only for auth on with no users yet")
        rec.check_name(name)

        def work(conn: Connection) -> IssuedToken:
            lock_for_change(conn)  # two racing bootstraps: the second finds the first's user
            if conn.execute(sa.select(schema.users.c.id).limit(1)).first() is not None:
                raise PermissionDeniedError("users exist now: set LOOPML_TOKEN to act")
            rec.insert_user(conn, name, Role.ADMIN, actor, "bootstrap: the first admin")
            return rec.insert_token(conn, name, token_name, None, actor, None)

        return self.store.transact(work)

    def _change_user(
        self, name: str, action: str, changes: dict[str, Any], actor: Identity, reason: str | None
    ) -> User:
        authorize(actor, action)

        def work(conn: Connection) -> User:
            lock_for_change(conn)  # two admins demoting each other must not leave none
            row = rec.user_row(conn, name)
            before = {"role": row.role, "disabled": bool(row.disabled)}
            after = {**before, **changes}
            if after == before:
                return rec.to_user(row)
            was_admin = before["role"] == Role.ADMIN.value and not before["disabled"]
            if was_admin and (after["role"] != Role.ADMIN.value or after["disabled"]):
                rec.keep_an_admin(conn, row.id)
            conn.execute(
                sa.update(schema.users)
                .where(schema.users.c.id == row.id)
                .values(role=after["role"], disabled=int(after["disabled"]))
            )
            append_audit(
                conn, actor=actor.name, action=action, target=f"user:{name}",
                before=before, after=after, reason=reason,
            )  # fmt: skip
            return rec.to_user(rec.user_row(conn, name))

        return self.store.transact(work)

    def set_role(
        self, name: str, role: Role | str, *, actor: Identity, reason: str | None = None
    ) -> User:
        """Change a user's role (refused if it would leave no enabled admin)."""
        return self._change_user(name, "user.role", {"role": Role.parse(role).value}, actor, reason)

    def disable_user(self, name: str, *, actor: Identity, reason: str | None = None) -> User:
        """Disable a user: their tokens are refused from now on."""
        return self._change_user(name, "user.disable", {"disabled": True}, actor, reason)

    def enable_user(self, name: str, *, actor: Identity, reason: str | None = None) -> User:
        """Enable a disabled user again."""
        return self._change_user(name, "user.enable", {"disabled": False}, actor, reason)

    def list_users(self, *, actor: Identity) -> list[User]:
        """Every user, by name."""
        authorize(actor, "user.list")
        with self.store.read() as conn:
            rows = conn.execute(sa.select(schema.users).order_by(schema.users.c.name)).all()
        return [rec.to_user(row) for row in rows]

    # -- tokens ----------------------------------------------------------------

    def create_token(
        self,
        user: str,
        *,
        actor: Identity,
        name: str = "default",
        expires_days: float | None = None,
        reason: str | None = None,
    ) -> IssuedToken:
        """A new API token for ``user``; its secret is returned here once, never stored."""
        authorize(actor, "token.create.self" if user == actor.name else "token.create")
        expires = rec.token_expiry(name, expires_days)
        return self.store.transact(
            lambda conn: rec.insert_token(conn, user, name, expires, actor, reason)
        )

    def revoke_token(
        self, token_id: str, *, actor: Identity, reason: str | None = None
    ) -> TokenInfo:
        """Revoke a token by id (your own, or anyone's as admin); revoking twice is a no-op."""

        def work(conn: Connection) -> TokenInfo:
            query = rec.token_query().where(schema.api_tokens.c.id == token_id)
            row = conn.execute(query).first()
            if row is None:
                raise NotFoundError(f"no API token with id {token_id!r}")
            authorize(actor, "token.revoke.self" if row.user == actor.name else "token.revoke")
            if row.revoked_ms is not None:
                return rec.to_token_info(row)
            revoked = now_ms()
            conn.execute(
                sa.update(schema.api_tokens)
                .where(schema.api_tokens.c.id == token_id)
                .values(revoked_ms=revoked)
            )
            append_audit(
                conn, actor=actor.name, action="token.revoke", target=f"token:{token_id}",
                before={"user": row.user, "revoked_ms": None},
                after={"user": row.user, "revoked_ms": revoked}, reason=reason,
            )  # fmt: skip
            return dataclasses.replace(rec.to_token_info(row), revoked_ms=revoked)

        return self.store.transact(work)

    def list_tokens(self, user: str, *, actor: Identity) -> list[TokenInfo]:
        """The tokens of ``user`` (yours, or anyone's as admin), oldest first."""
        authorize(actor, "token.list.self" if user == actor.name else "token.list")
        t = schema.api_tokens
        with self.store.read() as conn:
            rec.user_row(conn, user)
            query = rec.token_query().where(schema.users.c.name == user)
            rows = conn.execute(query.order_by(t.c.created_ms, t.c.id)).all()
        return [rec.to_token_info(row) for row in rows]

    # -- audit -----------------------------------------------------------------

    def audit(
        self,
        limit: int = 50,
        *,
        actor: Identity,
        by: str | None = None,
        action: str | None = None,
        target_prefix: str | None = None,
    ) -> list[AuditEntry]:
        """The newest audit rows, newest first (``by`` filters on who acted)."""
        authorize(actor, "audit.read")
        with self.store.read() as conn:
            return list_audit(conn, limit, actor=by, action=action, target_prefix=target_prefix)

    def verify_audit(
        self, *, actor: Identity, anchor: tuple[int, str] | None = None
    ) -> AuditReport:
        """Walk the audit chain (see :func:`verify_audit`)."""
        authorize(actor, "audit.read")
        with self.store.read() as conn:
            return verify_audit(conn, anchor=anchor)
