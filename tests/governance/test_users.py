"""Users and tokens through the service: authorized, audited in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from loopml.core import AlreadyExistsError, NotFoundError, PermissionDeniedError, ValidationError
from loopml.governance import PERMISSIONS, Governance, Identity, Role
from loopml.store import schema
from tests.governance.conftest import ROOT, Person


def test_add_change_disable_list_and_audit(gov: Governance) -> None:
    gov.add_user("alice", "admin", actor=ROOT, reason="first")
    gov.add_user("bob", Role.CONTRIBUTOR, actor=ROOT)
    assert gov.set_role("bob", "approver", actor=ROOT).role is Role.APPROVER
    assert gov.disable_user("bob", actor=ROOT, reason="left").disabled
    assert gov.disable_user("bob", actor=ROOT).disabled  # no change, no audit row
    users = {u.name: u for u in gov.list_users(actor=ROOT)}
    assert users["alice"].role is Role.ADMIN and users["alice"].created_by == "root"
    assert users["bob"].disabled and users["bob"].role is Role.APPROVER
    rows = gov.audit(actor=ROOT)
    assert [(r.action, r.target) for r in rows] == [
        ("user.disable", "user:bob"),
        ("user.role", "user:bob"),
        ("user.add", "user:bob"),
        ("user.add", "user:alice"),
    ]
    assert json.loads(rows[0].before or "") == {"disabled": False, "role": "approver"}
    assert json.loads(rows[0].after or "") == {"disabled": True, "role": "approver"}
    assert rows[0].reason == "left" and rows[0].actor == "root"
    assert gov.verify_audit(actor=ROOT).rows == 4


def test_refusals(gov: Governance) -> None:
    gov.add_user("alice", Role.ADMIN, actor=ROOT)
    with pytest.raises(AlreadyExistsError):
        gov.add_user("alice", Role.VIEWER, actor=ROOT)
    with pytest.raises(ValidationError, match="user name"):
        gov.add_user("a b", Role.VIEWER, actor=ROOT)
    with pytest.raises(ValidationError, match="unknown role"):
        gov.add_user("carol", "owner", actor=ROOT)
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        gov.set_role("nobody", Role.ADMIN, actor=ROOT)
    with pytest.raises(NotFoundError):
        gov.revoke_token("0" * 32, actor=ROOT)
    with pytest.raises(ValidationError, match="expires_days"):
        gov.create_token("alice", actor=ROOT, expires_days=0)
    assert len(gov.audit(actor=ROOT)) == 1  # failed changes leave no audit rows


def test_the_last_enabled_admin_stays(gov: Governance) -> None:
    gov.add_user("alice", Role.ADMIN, actor=ROOT)
    with pytest.raises(ValidationError, match="no enabled admin"):
        gov.set_role("alice", Role.VIEWER, actor=ROOT)
    with pytest.raises(ValidationError, match="no enabled admin"):
        gov.disable_user("alice", actor=ROOT)
    gov.add_user("bob", Role.ADMIN, actor=ROOT)
    gov.disable_user("alice", actor=ROOT)
    with pytest.raises(ValidationError, match="no enabled admin"):
        gov.set_role("bob", Role.APPROVER, actor=ROOT)


def test_a_failed_audit_write_rolls_back_the_change(gov: Governance) -> None:
    gov.add_user("alice", Role.ADMIN, actor=ROOT)
    # the audit row refuses a reason that looks like a token, after the user row is written
    with pytest.raises(ValidationError, match="API token into the audit log"):
        gov.add_user("bob", Role.VIEWER, actor=ROOT, reason="lml_" + "a" * 40)
    assert [u.name for u in gov.list_users(actor=ROOT)] == ["alice"]


def test_own_tokens(gov: Governance, people: dict[Role, Person]) -> None:
    contributor, viewer = people[Role.CONTRIBUTOR], people[Role.VIEWER]
    extra = gov.create_token("contributor", actor=contributor.identity, name="ci")
    listed = gov.list_tokens("contributor", actor=contributor.identity)
    assert [t.name for t in listed] == ["default", "ci"] and listed[1].id == extra.info.id
    with pytest.raises(PermissionDeniedError, match="token.create.self"):
        gov.create_token("viewer", actor=viewer.identity)
    with pytest.raises(PermissionDeniedError, match=r"may not token\.list:"):
        gov.list_tokens("approver", actor=contributor.identity)
    with pytest.raises(PermissionDeniedError, match=r"may not token\.revoke:"):
        gov.revoke_token(people[Role.APPROVER].token_id, actor=viewer.identity)
    revoked = gov.revoke_token(viewer.token_id, actor=viewer.identity)
    assert revoked.revoked_ms is not None
    again = gov.revoke_token(viewer.token_id, actor=ROOT)
    assert again.revoked_ms == revoked.revoked_ms
    entries = gov.audit(actor=ROOT, action="token.*")
    assert [e.action for e in entries][:2] == ["token.revoke", "token.create"]
    assert all("lml_" not in (e.after or "") for e in entries)


# Every mutating service call, the action it checks, and how to make it against
# someone else (never the caller: self-service has its own actions).
MUTATIONS: dict[str, Callable[[Governance, Identity, str], object]] = {
    "user.add": lambda g, a, o: g.add_user("newcomer", Role.VIEWER, actor=a),
    "user.role": lambda g, a, o: g.set_role("victim", Role.APPROVER, actor=a),
    "user.disable": lambda g, a, o: g.disable_user("victim", actor=a),
    "user.enable": lambda g, a, o: g.enable_user("frozen", actor=a),
    "token.create": lambda g, a, o: g.create_token("victim", actor=a),
    "token.revoke": lambda g, a, o: g.revoke_token(o, actor=a),
}


def test_every_mutation_with_every_role(gov: Governance, people: dict[Role, Person]) -> None:
    """Each role tries each mutation on someone else; only what its role allows happens."""
    gov.add_user("victim", Role.CONTRIBUTOR, actor=ROOT)
    gov.add_user("frozen", Role.VIEWER, actor=ROOT)
    gov.disable_user("frozen", actor=ROOT)
    victims_token = gov.create_token("victim", actor=ROOT).info.id

    def state() -> list[tuple[object, ...]]:
        with gov.store.read() as conn:
            users = conn.execute(sa.select(schema.users).order_by(schema.users.c.name)).all()
            tokens = conn.execute(sa.select(schema.api_tokens).order_by("id")).all()
        return [tuple(row) for row in [*users, *tokens]]

    wrong: list[str] = []
    for role in sorted(Role):  # admin last: its changes must not help the others
        actor = people[role].identity
        for action, mutate in sorted(MUTATIONS.items()):
            allowed = role.rank >= PERMISSIONS[action].rank
            before, audited = state(), len(gov.audit(1000, actor=ROOT))
            try:
                mutate(gov, actor, victims_token)
            except PermissionDeniedError:
                if allowed:
                    wrong.append(f"{role.value} was refused {action}")
                elif state() != before or len(gov.audit(1000, actor=ROOT)) != audited:
                    wrong.append(f"{role.value} was refused {action} but something changed")
            else:
                if not allowed:
                    wrong.append(f"{role.value} could {action}")
                elif len(gov.audit(1000, actor=ROOT)) != audited + 1:
                    wrong.append(f"{action} by {role.value} was not audited once")
    assert not wrong
    assert {a for a in PERMISSIONS if a.startswith("user.") and not a.endswith(".list")} | {
        "token.create",
        "token.revoke",
    } == set(MUTATIONS)
