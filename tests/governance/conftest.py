"""Fixtures: a Governance service on each database, and one token-holding user per role."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from loopml.core import Settings
from loopml.governance import Governance, Identity, Role, resolve_identity

ROOT = Identity(name="root", role=Role.ADMIN, via="local")


class Person(NamedTuple):
    """A user with a token, and the identity that token resolves to."""

    identity: Identity
    token: str
    token_id: str


@pytest.fixture
def gov(settings: Settings) -> Iterator[Governance]:
    service = Governance(settings)
    yield service
    service.close()


def person(gov: Governance, name: str, role: Role) -> Person:
    """Add ``name`` with ``role`` and a token; resolve the token as LOOPML_TOKEN would."""
    gov.add_user(name, role, actor=ROOT)
    issued = gov.create_token(name, actor=ROOT)
    settings = dataclasses.replace(gov.settings, auth=True, token=issued.secret)
    return Person(resolve_identity(settings, gov.store), issued.secret, issued.info.id)


@pytest.fixture
def people(gov: Governance) -> dict[Role, Person]:
    """One user per role, named after it, each with one token."""
    return {role: person(gov, role.value, role) for role in Role}
