"""Governance: identities, API tokens, roles, and the hash-chained audit log.

Other layers call :func:`require` (or :func:`resolve_identity` then
:func:`authorize`) before a change, and :func:`append_audit` inside the same
``store.transact(work)`` that makes it.
"""

from loopml.governance._audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditReport,
    append_audit,
    entry_hash,
    list_audit,
    verify_audit,
)
from loopml.governance._base import StoreService
from loopml.governance._identity import (
    TOKEN_PREFIX,
    hash_token,
    identity_from_token,
    local_user,
    require,
    resolve_identity,
)
from loopml.governance._records import IssuedToken, TokenInfo, User
from loopml.governance._roles import (
    PERMISSIONS,
    SELF_SERVICE,
    Identity,
    Role,
    authorize,
    is_allowed,
)
from loopml.governance._service import Governance

__all__ = [
    "GENESIS_HASH",
    "PERMISSIONS",
    "SELF_SERVICE",
    "TOKEN_PREFIX",
    "AuditEntry",
    "AuditReport",
    "Governance",
    "Identity",
    "IssuedToken",
    "Role",
    "StoreService",
    "TokenInfo",
    "User",
    "append_audit",
    "authorize",
    "entry_hash",
    "hash_token",
    "identity_from_token",
    "is_allowed",
    "list_audit",
    "local_user",
    "require",
    "resolve_identity",
    "verify_audit",
]
