"""Roles, the permission table and authorize: the matrix is driven by PERMISSIONS itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loopml.core import PermissionDeniedError, ValidationError
from loopml.governance import PERMISSIONS, SELF_SERVICE, Identity, Role, authorize, is_allowed

READ_SUFFIXES = (".read", ".list", ".list.self")


def is_read_only(action: str) -> bool:
    return action.endswith(READ_SUFFIXES)


def test_roles_order_by_rank_not_spelling() -> None:
    assert Role.VIEWER < Role.CONTRIBUTOR < Role.APPROVER < Role.ADMIN
    assert Role.ADMIN > Role.VIEWER and Role.ADMIN >= Role.ADMIN and Role.VIEWER <= Role.VIEWER
    assert sorted([Role.ADMIN, Role.VIEWER, Role.APPROVER]) == [
        Role.VIEWER,
        Role.APPROVER,
        Role.ADMIN,
    ]
    assert max(Role) is Role.ADMIN


def test_role_parse() -> None:
    assert Role.parse(" Approver ") is Role.APPROVER
    with pytest.raises(ValidationError, match="expected one of viewer, contributor"):
        Role.parse("root")


@pytest.mark.parametrize("action", sorted(PERMISSIONS))
@pytest.mark.parametrize("role", list(Role))
def test_matrix_allows_iff_role_reaches_the_least_role(action: str, role: Role) -> None:
    identity = Identity(name="someone", role=role, via="token")
    allowed = role.rank >= PERMISSIONS[action].rank
    assert is_allowed(identity, action) is allowed
    if not allowed:
        with pytest.raises(PermissionDeniedError) as caught:
            authorize(identity, action)
        message = str(caught.value)
        assert "someone" in message and role.value in message and action in message
        assert PERMISSIONS[action].value in message


def test_a_viewer_changes_nothing_but_its_own_credentials() -> None:
    viewer_actions = {a for a, least in PERMISSIONS.items() if least is Role.VIEWER}
    assert {a for a in viewer_actions if not is_read_only(a)} <= SELF_SERVICE
    # self-service actions only take access away from the caller
    assert {"token.revoke.self"} == SELF_SERVICE


# managing identities (reads and the caller's own tokens aside), promoting, approving
MANAGING = (a for a in PERMISSIONS if a.startswith(("user.", "token.", "settings.")))
CONTRIBUTOR_FORBIDDEN = [
    *sorted(a for a in MANAGING if not is_read_only(a) and not a.endswith(".self")),
    *("deployment.change", "model.approve", "model.promote", "model.reject"),
]


@pytest.mark.parametrize("action", CONTRIBUTOR_FORBIDDEN)
def test_a_contributor_cannot_promote_approve_or_manage_users(action: str) -> None:
    assert not is_allowed(Identity("c", Role.CONTRIBUTOR, "token"), action)


def test_only_admins_manage_users_and_tokens_of_others() -> None:
    for action in ("user.add", "user.role", "user.disable", "token.create", "token.revoke"):
        assert PERMISSIONS[action] is Role.ADMIN
        assert not is_allowed(Identity("a", Role.APPROVER, "token"), action)


def test_unknown_action_is_refused_even_for_admin() -> None:
    with pytest.raises(PermissionDeniedError, match="unknown action 'model.promte'"):
        authorize(Identity("root", Role.ADMIN, "local"), "model.promte")


def test_permissions_cannot_be_widened_at_runtime() -> None:
    with pytest.raises(TypeError):
        PERMISSIONS["model.promote"] = Role.VIEWER  # type: ignore[index]


def test_bootstrap_identity_may_only_add_users() -> None:
    boot = Identity("me", Role.ADMIN, "bootstrap")
    authorize(boot, "user.add")
    for action in PERMISSIONS:
        if action != "user.add":
            with pytest.raises(PermissionDeniedError, match="create the first admin"):
                authorize(boot, action)


def test_docs_table_matches_permissions() -> None:
    docs = Path(__file__).parents[2] / "docs" / "governance.md"
    table = docs.read_text(encoding="utf-8").split("## Roles")[1].split("Decisions")[0]
    documented: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for action in re.findall(r"`([^`]+)`", cells[0]):
                documented[action] = cells[1]
    assert documented == {action: role.value for action, role in PERMISSIONS.items()}
