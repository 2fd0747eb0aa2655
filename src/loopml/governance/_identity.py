"""Who is acting: the local user in embedded mode, or the owner of ``LOOPML_TOKEN``.

Tokens are 32 random bytes, so a fast hash is the right one: only the SHA-256 of each
token is stored, and a token is looked up by that digest. Messages never echo a token.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets

import sqlalchemy as sa

from loopml.core import PermissionDeniedError, Settings, now_ms
from loopml.governance._roles import Identity, Role, authorize
from loopml.store import MetadataStore, schema

__all__ = [
    "TOKEN_PREFIX",
    "hash_token",
    "identity_from_token",
    "local_user",
    "new_token",
    "require",
    "resolve_identity",
]

TOKEN_PREFIX = "lml_"
_SHOWN = 12  # characters of a token kept to tell tokens apart: "lml_" + 8 random
_GET_TOKEN = "an admin creates one with `loopml users token NAME`"


def local_user() -> str:
    """The operating-system user running this process ("local" if it has none)."""
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):  # no USER variable and no passwd entry (some containers)
        return "local"


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A fresh token: (secret, its digest, its short display prefix)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, hash_token(secret), secret[:_SHOWN]


def identity_from_token(store: MetadataStore, token: str) -> Identity:
    """The user an API token belongs to (the HTTP API calls this per request).

    Raises:
        PermissionDeniedError: the token is unknown, revoked or expired, or its user
            is disabled. The message never contains the token.
    """
    digest = hash_token(token.strip())
    t, u = schema.api_tokens, schema.users
    query = (
        sa.select(
            t.c.id, t.c.name, t.c.token_hash, t.c.expires_ms, t.c.revoked_ms,
            u.c.name.label("user"), u.c.role, u.c.disabled,
        )
        .join(u, u.c.id == t.c.user_id)
        .where(t.c.token_hash == digest)
    )  # fmt: skip
    with store.read() as conn:
        row = conn.execute(query).first()
    # the lookup already matched the digest; compare again in constant time anyway
    if row is None or not hmac.compare_digest(str(row.token_hash), digest):
        hint = "" if token.startswith(TOKEN_PREFIX) else f" (loopml tokens start {TOKEN_PREFIX})"
        raise PermissionDeniedError(f"LOOPML_TOKEN is not a known API token{hint}; {_GET_TOKEN}")
    label = f"API token {row.id} ({row.name!r} of user {row.user})"
    if row.revoked_ms is not None:
        raise PermissionDeniedError(f"{label} was revoked; {_GET_TOKEN}")
    if row.expires_ms is not None and row.expires_ms <= now_ms():
        raise PermissionDeniedError(f"{label} has expired; {_GET_TOKEN}")
    if row.disabled:
        raise PermissionDeniedError(f"user {row.user} is disabled; ask an admin")
    return Identity(name=str(row.user), role=Role(row.role), via="token")


def _no_users(store: MetadataStore) -> bool:
    with store.read() as conn:
        return conn.execute(sa.select(schema.users.c.id).limit(1)).first() is None


def resolve_identity(settings: Settings, store: MetadataStore) -> Identity:
    """Who is acting, from the settings.

    - ``auth`` off (embedded, the default): the local OS user, as admin, via "local".
    - ``auth`` on: the owner of ``settings.token`` (``LOOPML_TOKEN``), via "token".
      With no token and no users in the database yet, the local user gets the
      bootstrap identity, which may only create the first admin.

    Raises:
        PermissionDeniedError: auth is on and the token is missing, unknown, revoked
            or expired, or its user is disabled.
    """
    if not settings.auth:
        return Identity(name=local_user(), role=Role.ADMIN, via="local")
    if settings.token:
        return identity_from_token(store, settings.token)
    if _no_users(store):
        return Identity(name=local_user(), role=Role.ADMIN, via="bootstrap")
    raise PermissionDeniedError(
        "auth is on (LOOPML_AUTH) and LOOPML_TOKEN is not set: set LOOPML_TOKEN to your API "
        f"token; {_GET_TOKEN}"
    )


def require(settings: Settings, store: MetadataStore, action: str) -> Identity:
    """:func:`resolve_identity`, then :func:`authorize` ``action``; returns the identity."""
    identity = resolve_identity(settings, store)
    authorize(identity, action)
    return identity
