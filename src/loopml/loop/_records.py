"""The loop's rows: decisions with their evidence, and each deployment's rollout state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import ValidationError, now_ms
from loopml.governance import append_audit
from loopml.store import schema

__all__ = [
    "KINDS",
    "STATES",
    "Decision",
    "LoopState",
    "count_since",
    "insert_decision",
    "last_decision",
    "list_decisions",
    "list_states",
    "read_state",
    "set_frozen",
    "write_state",
]

_D = schema.loop_decisions
_S = schema.loop_state

# retrain: a trigger fired and a pipeline ran; reject: the candidate lost its evaluation
# or failed a gate; canary: a canary step began; promote / rollback: the rollout ended;
# skip: a trigger fired and a guardrail stopped it; error: the loop could not go on.
KINDS = ("retrain", "reject", "canary", "promote", "rollback", "skip", "error")
STATES = ("idle", "retraining", "evaluating", "canary")


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class Decision:
    """One decision of the controller: what, why, on which versions, with its evidence."""

    id: int
    deployment: str
    kind: str
    reason: str
    candidate: str | None
    champion: str | None
    evidence: dict[str, Any]
    actor: str
    ts_ms: int
    recorded_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "kind": self.kind,
            "reason": self.reason,
            "candidate": self.candidate,
            "champion": self.champion,
            "evidence": self.evidence,
            "actor": self.actor,
            "ts_ms": self.ts_ms,
            "recorded_ms": self.recorded_ms,
        }


@dataclass(frozen=True)
class LoopState:
    """Where a deployment's loop stands; ``data`` holds the rollout in progress."""

    deployment: str
    state: str = "idle"
    data: dict[str, Any] = field(default_factory=dict)
    frozen: bool = False
    freeze_reason: str | None = None
    updated_ms: int = 0


def _decision(row: Any) -> Decision:
    return Decision(
        id=int(row.id),
        deployment=row.deployment,
        kind=row.kind,
        reason=row.reason,
        candidate=row.candidate,
        champion=row.champion,
        evidence=orjson.loads(row.evidence),
        actor=row.actor,
        ts_ms=int(row.ts_ms),
        recorded_ms=int(row.recorded_ms),
    )


def insert_decision(
    conn: Connection,
    *,
    deployment: str,
    kind: str,
    reason: str,
    candidate: str | None,
    champion: str | None,
    evidence: dict[str, Any],
    actor: str,
    ts_ms: int,
) -> Decision:
    """Store a decision and append it to the audit log, in the caller's transaction.

    The audit row carries the decision's id, kind, reason, versions and the SHA-256 of
    its evidence, so evidence edited later no longer matches the chained log.
    """
    if kind not in KINDS:
        raise ValidationError(f"decision kind must be one of {', '.join(KINDS)}; got {kind!r}")
    text = dumps(evidence)
    recorded = now_ms()
    values = {
        "deployment": deployment,
        "kind": kind,
        "reason": reason,
        "candidate": candidate,
        "champion": champion,
        "evidence": text,
        "actor": actor,
        "ts_ms": ts_ms,
        "recorded_ms": recorded,
    }
    new_id = conn.execute(sa.insert(_D).values(values).returning(_D.c.id)).scalar_one()
    append_audit(
        conn,
        actor=actor,
        action=f"loop.{kind}",
        target=f"deployment:{deployment}",
        after={
            "decision": int(new_id),
            "kind": kind,
            "candidate": candidate,
            "champion": champion,
            "ts_ms": ts_ms,
            "evidence_sha256": hashlib.sha256(text.encode()).hexdigest(),
        },
        reason=reason,
    )
    return Decision(
        int(new_id),
        deployment,
        kind,
        reason,
        candidate,
        champion,
        orjson.loads(text),
        actor,
        ts_ms,
        recorded,
    )


def list_decisions(
    conn: Connection,
    *,
    deployment: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[Decision]:
    """Decisions, newest first."""
    query = sa.select(_D).order_by(_D.c.id.desc()).limit(limit)
    if deployment is not None:
        query = query.where(_D.c.deployment == deployment)
    if kind is not None:
        query = query.where(_D.c.kind == kind)
    return [_decision(row) for row in conn.execute(query)]


def last_decision(conn: Connection, deployment: str, kind: str | None = None) -> Decision | None:
    found = list_decisions(conn, deployment=deployment, kind=kind, limit=1)
    return found[0] if found else None


def count_since(conn: Connection, deployment: str, kind: str, since_ts_ms: int) -> int:
    """How many ``kind`` decisions ``deployment`` had at or after ``since_ts_ms`` (clock)."""
    query = sa.select(sa.func.count()).where(
        _D.c.deployment == deployment, _D.c.kind == kind, _D.c.ts_ms >= since_ts_ms
    )
    return int(conn.execute(query).scalar_one())


def _state(row: Any) -> LoopState:
    return LoopState(
        deployment=row.deployment,
        state=row.state,
        data=orjson.loads(row.data),
        frozen=bool(row.frozen),
        freeze_reason=row.freeze_reason,
        updated_ms=int(row.updated_ms),
    )


def read_state(conn: Connection, deployment: str) -> LoopState:
    """The deployment's state; ``idle`` when the loop never acted on it."""
    row = conn.execute(sa.select(_S).where(_S.c.deployment == deployment)).first()
    return LoopState(deployment) if row is None else _state(row)


def list_states(conn: Connection) -> list[LoopState]:
    return [_state(row) for row in conn.execute(sa.select(_S).order_by(_S.c.deployment))]


def _upsert(conn: Connection, deployment: str, changes: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    values = {
        "deployment": deployment,
        "state": "idle",
        "data": "{}",
        "frozen": 0,
        "freeze_reason": None,
        **changes,
        "updated_ms": now_ms(),
    }
    statement = insert(_S).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["deployment"],
            set_={k: statement.excluded[k] for k in (*changes, "updated_ms")},
        )
    )


def write_state(conn: Connection, deployment: str, state: str, data: dict[str, Any]) -> None:
    """Set where the deployment's loop stands; its freeze is left as it is (the CLI may
    freeze it while the controller works)."""
    if state not in STATES:
        raise ValidationError(f"loop state must be one of {', '.join(STATES)}; got {state!r}")
    _upsert(conn, deployment, {"state": state, "data": dumps(data)})


def set_frozen(conn: Connection, deployment: str, frozen: bool, reason: str | None) -> None:
    """Freeze or unfreeze the deployment's loop, leaving its state as it is."""
    _upsert(conn, deployment, {"frozen": int(frozen), "freeze_reason": reason if frozen else None})
