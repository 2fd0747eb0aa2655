"""Users and tokens as records, and the statements that read and write them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import AlreadyExistsError, NotFoundError, ValidationError, new_id, now_ms
from loopml.governance._audit import append_audit
from loopml.governance._identity import new_token
from loopml.governance._roles import Identity, Role
from loopml.store import schema

__all__ = ["IssuedToken", "TokenInfo", "User"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class User:
    """A user: a unique name and a role; a disabled user's tokens are refused."""

    id: str
    name: str
    role: Role
    disabled: bool
    created_ms: int
    created_by: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as stored: never the secret, only a short prefix to tell it apart."""

    id: str
    user: str
    name: str
    prefix: str
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created; ``secret`` exists only here and is never shown again."""

    info: TokenInfo
    secret: str = field(repr=False)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"user name {name!r} must be 1-128 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def user_row(conn: Connection, name: str) -> Any:
    row = conn.execute(sa.select(schema.users).where(schema.users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no user named {name!r}; see `loopml users list`")
    return row


def to_user(row: Any) -> User:
    return User(
        row.id, row.name, Role(row.role), bool(row.disabled), row.created_ms, row.created_by
    )


def to_token_info(row: Any) -> TokenInfo:
    return TokenInfo(
        row.id, row.user, row.name, row.prefix, row.created_ms, row.expires_ms, row.revoked_ms
    )


def token_query() -> sa.Select[Any]:
    t, u = schema.api_tokens, schema.users
    return sa.select(
        t.c.id, u.c.name.label("user"), t.c.name, t.c.prefix,
        t.c.created_ms, t.c.expires_ms, t.c.revoked_ms,
    ).join(u, u.c.id == t.c.user_id)  # fmt: skip


def keep_an_admin(conn: Connection, user_id: str) -> None:
    """Refuse a change that would leave no enabled admin besides ``user_id``."""
    u = schema.users
    others = conn.execute(
        sa.select(sa.func.count())
        .select_from(u)
        .where(u.c.role == Role.ADMIN.value, u.c.disabled == 0, u.c.id != user_id)
    ).scalar_one()
    if not others:
        raise ValidationError("refused: this would leave no enabled admin")


def insert_user(
    conn: Connection, name: str, role: Role, actor: Identity, reason: str | None
) -> User:
    u = schema.users
    if conn.execute(sa.select(u.c.id).where(u.c.name == name)).first() is not None:
        raise AlreadyExistsError(f"a user named {name!r} already exists")
    user = User(new_id(), name, role, False, now_ms(), actor.name)
    conn.execute(
        sa.insert(u).values(
            id=user.id, name=name, role=role.value, disabled=0,
            created_ms=user.created_ms, created_by=actor.name,
        )
    )  # fmt: skip
    append_audit(
        conn, actor=actor.name, action="user.add", target=f"user:{name}",
        after={"role": role.value, "disabled": False}, reason=reason,
    )  # fmt: skip
    return user


def token_expiry(name: str, expires_days: float | None) -> int | None:
    """Check a token's label and lifetime; the expiry time in ms (None: never)."""
    if not name or len(name) > 128:
        raise ValidationError("a token name must be 1-128 characters")
    if expires_days is None:
        return None
    if expires_days <= 0:
        raise ValidationError(f"expires_days must be greater than 0; got {expires_days}")
    return now_ms() + int(expires_days * _DAY_MS)


def insert_token(
    conn: Connection,
    user: str,
    name: str,
    expires_ms: int | None,
    actor: Identity,
    reason: str | None,
) -> IssuedToken:
    row = user_row(conn, user)
    if row.disabled:
        raise ValidationError(f"user {user} is disabled; enable them first")
    secret, digest, prefix = new_token()
    info = TokenInfo(new_id(), user, name, prefix, now_ms(), expires_ms, None)
    conn.execute(
        sa.insert(schema.api_tokens).values(
            id=info.id, user_id=row.id, token_hash=digest, prefix=prefix, name=name,
            created_ms=info.created_ms, expires_ms=expires_ms, revoked_ms=None,
        )
    )  # fmt: skip
    append_audit(
        conn, actor=actor.name, action="token.create", target=f"token:{info.id}",
        after={"user": user, "name": name, "expires_ms": expires_ms}, reason=reason,
    )  # fmt: skip
    return IssuedToken(info, secret)
