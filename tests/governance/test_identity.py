"""Who is acting: local mode, tokens, bootstrap, and every refusal; tokens hashed at rest."""

from __future__ import annotations

import dataclasses
import getpass
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.core import PermissionDeniedError, Settings
from loopml.governance import (
    Governance,
    Identity,
    Role,
    hash_token,
    identity_from_token,
    require,
    resolve_identity,
)
from loopml.store import schema
from tests.governance.conftest import ROOT, Person


def auth(settings: Settings, token: str | None = None) -> Settings:
    return dataclasses.replace(settings, auth=True, token=token)


def test_embedded_mode_is_the_local_user_as_admin(gov: Governance) -> None:
    identity = resolve_identity(gov.settings, gov.store)
    assert identity == Identity(getpass.getuser(), Role.ADMIN, "local")


def test_embedded_mode_ignores_a_token(gov: Governance) -> None:
    settings = dataclasses.replace(gov.settings, token="lml_whatever")
    assert resolve_identity(settings, gov.store).via == "local"


def test_token_resolves_to_its_user(gov: Governance, people: dict[Role, Person]) -> None:
    for role, who in people.items():
        assert who.identity == Identity(role.value, role, "token")
        assert resolve_identity(auth(gov.settings, f"  {who.token}\n"), gov.store) == who.identity


def test_auth_without_token_is_refused_once_users_exist(
    gov: Governance, people: dict[Role, Person]
) -> None:
    with pytest.raises(PermissionDeniedError, match="LOOPML_TOKEN is not set.*loopml users token"):
        resolve_identity(auth(gov.settings), gov.store)


def test_unknown_token_is_refused_without_echoing_it(
    gov: Governance, people: dict[Role, Person]
) -> None:
    forged = "lml_" + "x" * 43
    with pytest.raises(PermissionDeniedError, match="not a known API token") as caught:
        resolve_identity(auth(gov.settings, forged), gov.store)
    assert forged not in str(caught.value) and "xxxx" not in str(caught.value)
    with pytest.raises(PermissionDeniedError, match="tokens start lml_") as caught:
        identity_from_token(gov.store, "hunter2")
    assert "hunter2" not in str(caught.value)


def test_revoked_expired_and_disabled_are_refused(
    gov: Governance, people: dict[Role, Person]
) -> None:
    who = people[Role.CONTRIBUTOR]
    gov.revoke_token(who.token_id, actor=ROOT)
    with pytest.raises(PermissionDeniedError, match="was revoked") as caught:
        identity_from_token(gov.store, who.token)
    assert who.token not in str(caught.value)

    approver = people[Role.APPROVER]
    with gov.store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.api_tokens)
            .where(schema.api_tokens.c.id == approver.token_id)
            .values(expires_ms=1)
        )
    with pytest.raises(PermissionDeniedError, match="has expired"):
        identity_from_token(gov.store, approver.token)

    viewer = people[Role.VIEWER]
    gov.disable_user("viewer", actor=ROOT)
    with pytest.raises(PermissionDeniedError, match="user viewer is disabled"):
        identity_from_token(gov.store, viewer.token)
    gov.enable_user("viewer", actor=ROOT)
    assert identity_from_token(gov.store, viewer.token).name == "viewer"


def test_expiry_in_the_future_is_accepted(gov: Governance) -> None:
    gov.add_user("temp", Role.VIEWER, actor=ROOT)
    issued = gov.create_token("temp", actor=ROOT, expires_days=1)
    assert issued.info.expires_ms is not None and issued.info.expires_ms > issued.info.created_ms
    assert identity_from_token(gov.store, issued.secret).name == "temp"


def test_bootstrap_creates_only_the_first_admin(gov: Governance) -> None:
    settings = auth(gov.settings)
    boot = resolve_identity(settings, gov.store)
    assert boot.via == "bootstrap" and boot.role is Role.ADMIN
    with pytest.raises(PermissionDeniedError, match="first admin"):
        require(settings, gov.store, "audit.read")
    with pytest.raises(PermissionDeniedError, match="Governance.bootstrap"):
        gov.add_user("alice", Role.VIEWER, actor=boot)
    with pytest.raises(PermissionDeniedError, match="only for auth on"):
        gov.bootstrap("alice", actor=ROOT)
    issued = gov.bootstrap("alice", actor=boot)
    alice = resolve_identity(auth(gov.settings, issued.secret), gov.store)
    assert alice == Identity("alice", Role.ADMIN, "token")
    # the same bootstrap identity, kept around, cannot add a second user
    with pytest.raises(PermissionDeniedError, match="users exist now"):
        gov.bootstrap("mallory", actor=boot)
    with pytest.raises(PermissionDeniedError, match="LOOPML_TOKEN is not set"):
        resolve_identity(settings, gov.store)
    assert [u.name for u in gov.list_users(actor=alice)] == ["alice"]
    assert [(e.action, e.actor) for e in gov.audit(actor=alice)] == [
        ("token.create", boot.name),
        ("user.add", boot.name),
    ]


def test_tokens_are_stored_hashed_only(gov: Governance, tmp_path: Path) -> None:
    gov.add_user("alice", Role.ADMIN, actor=ROOT)
    issued = gov.create_token("alice", actor=ROOT, name="laptop")
    secret = issued.secret
    assert secret.startswith("lml_") and len(secret) >= 40
    assert secret not in repr(issued)
    hidden = secret[len(issued.info.prefix) :]
    dumped: list[str] = []
    with gov.store.read() as conn:
        for table in schema.metadata.sorted_tables:
            dumped += [repr(tuple(row)) for row in conn.execute(sa.select(table))]
        stored = conn.execute(sa.select(schema.api_tokens)).one()
    text = "\n".join(dumped)
    assert secret not in text and hidden not in text
    assert stored.token_hash == hash_token(secret) and stored.prefix == secret[:12]
    gov.close()  # checkpoint SQLite's WAL; then no file under tmp_path holds the secret
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert hidden.encode() not in path.read_bytes(), path
