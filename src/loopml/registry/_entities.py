"""What the registry stores: models, their versions, alias moves, gate results, approvals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loopml.core import ValidationError

__all__ = [
    "CHAMPION",
    "AliasMove",
    "Approval",
    "GateOutcome",
    "GateReport",
    "ModelVersion",
    "RegisteredModel",
    "check_alias",
    "check_model_name",
    "parse_model_ref",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"model name {name!r} is not valid: letters, digits, '_', '.', '-', starting with "
            "a letter or digit, at most 128 characters"
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.isdigit():
        raise ValidationError(
            f"alias {alias!r} is not valid: a letter, then letters, digits, '_' or '-' "
            "(at most 64 characters)"
        )
    return alias


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """``"churn@3"`` -> ``("churn", "3")``; ``"churn@champion"``; ``"churn"`` -> latest."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError("a model reference looks like NAME, NAME@VERSION or NAME@ALIAS")
    name, sep, which = ref.strip().partition("@")
    check_model_name(name)
    if sep and not which:
        raise ValidationError(f"model reference {ref!r} has nothing after '@'")
    return name, (which or None)


@dataclass(frozen=True)
class RegisteredModel:
    id: str
    name: str
    description: str
    requires_approval: bool
    gates: list[dict[str, Any]]
    card: dict[str, str]
    created_ms: int
    created_by: str
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable registered version: the artifact and everything it came from."""

    id: str
    model: str
    version: int
    flavor: str
    artifact: str
    signature: dict[str, Any]
    libraries: dict[str, str]
    metrics: dict[str, float]
    run_id: str | None
    pipeline_run_id: str | None
    dataset: str | None
    split: dict[str, Any] | None
    profile: str | None
    code_version: str | None
    description: str
    extra: dict[str, Any]
    created_ms: int
    created_by: str
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class AliasMove:
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    ts_ms: int


@dataclass(frozen=True)
class Approval:
    decision: str  # approved | rejected
    actor: str
    comment: str
    ts_ms: int


@dataclass(frozen=True)
class GateOutcome:
    """One gate's verdict with its evidence: the measured value and what it was held to."""

    name: str
    kind: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateReport:
    version: str
    passed: bool
    outcomes: list[GateOutcome]
    actor: str
    ts_ms: int

    @property
    def failed(self) -> list[GateOutcome]:
        return [o for o in self.outcomes if not o.passed]
