"""Roles, the one table of actions and the least role each needs, and :func:`authorize`.

Every service that changes state calls ``authorize(identity, "<action>")`` before it
writes, so the SDK, the CLI and the HTTP API obey the same rules. An action missing
from :data:`PERMISSIONS` is refused, so a typo cannot silently allow anything.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from loopml.core import PermissionDeniedError, ValidationError

__all__ = ["PERMISSIONS", "SELF_SERVICE", "Identity", "Role", "authorize", "is_allowed"]


class Role(enum.StrEnum):
    """What a user may do; each role may do everything the roles below it may.

    ``viewer < contributor < approver < admin``. Comparisons go by rank, not by
    spelling (a plain ``str`` comparison would put ``admin`` first).
    """

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer up to 3 for admin."""
        return _RANKS[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role spelled ``text`` (any case).

        Raises:
            ValidationError: ``text`` names no role.
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ValidationError(f"unknown role {text!r}; expected one of {names}") from None

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {role: rank for rank, role in enumerate(Role)}

_V, _C, _AP, _AD = Role.VIEWER, Role.CONTRIBUTOR, Role.APPROVER, Role.ADMIN

# Every action loopml checks, and the least role allowed to do it. New actions are
# added here (and to docs/governance.md); the permission-matrix test covers each.
# Read-only (not mutating) actions end in ".read" or ".list".
PERMISSIONS: Mapping[str, Role] = MappingProxyType(
    {
        # identities and tokens
        "user.add": _AD,
        "user.role": _AD,
        "user.disable": _AD,
        "user.enable": _AD,
        "user.list": _V,
        "token.create": _AD,  # a token for someone else
        "token.create.self": _C,  # a token for yourself
        "token.revoke": _AD,
        "token.revoke.self": _V,  # anyone may kill their own credential
        "token.list": _AD,
        "token.list.self": _V,
        "audit.read": _V,
        "settings.change": _AD,
        # data
        "data.ingest": _C,
        "data.add": _C,
        "data.split": _C,
        # tracking and pipelines
        "run.create": _C,
        "pipeline.run": _C,
        "pipeline.resume": _C,
        "schedule.add": _C,
        "schedule.remove": _C,
        "schedule.enable": _C,
        "event.emit": _C,
        "feedback.write": _C,
        # registry
        "model.register": _C,
        "model.update": _C,
        "model.alias": _C,  # user aliases; moving "champion" is model.promote
        "model.evaluate_gates": _C,
        "model.export_onnx": _C,
        "model.promote": _AP,
        "model.approve": _AP,
        "model.reject": _AP,
        # serving
        "deployment.change": _AP,
        # monitoring
        "monitor.run": _C,  # a monitoring pass: reports, alert states, webhooks, events
        "alert.ack": _C,
    }
)

# Mutating actions that a viewer may do, because they touch only the caller's own
# credentials and can only take access away.
SELF_SERVICE: frozenset[str] = frozenset({"token.revoke.self"})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is acting: a name, a role, and how they were identified.

    ``via`` is ``"token"`` (an API token, auth on), ``"local"`` (the OS user in
    embedded mode, auth off) or ``"bootstrap"`` (auth on but no users exist yet: may
    only create the first admin).
    """

    name: str
    role: Role
    via: str


def _least_role(action: str) -> Role:
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise PermissionDeniedError(
            f"unknown action {action!r}: it is not in loopml.governance.PERMISSIONS, "
            "so it is refused"
        ) from None


def is_allowed(identity: Identity, action: str) -> bool:
    """Whether ``identity`` may do ``action`` (False for an unknown action)."""
    try:
        authorize(identity, action)
    except PermissionDeniedError:
        return False
    return True


def authorize(identity: Identity, action: str) -> None:
    """Raise unless ``identity``'s role is at least the least role ``action`` needs.

    Raises:
        PermissionDeniedError: the role is too low, the action is unknown, or the
            identity is the bootstrap identity and the action is not ``user.add``.
    """
    needed = _least_role(action)
    if identity.via == "bootstrap" and action != "user.add":
        raise PermissionDeniedError(
            f"{action} refused: auth is on and no users exist yet; the only thing you can do "
            "is create the first admin with `loopml users add NAME --role admin`"
        )
    if identity.role < needed:
        raise PermissionDeniedError(
            f"{identity.name} (role {identity.role.value}) may not {action}: "
            f"it needs role {needed.value} or higher"
        )
