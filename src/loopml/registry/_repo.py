"""SQL for the registry: rows in, entities out. Callers own the transaction."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from loopml.core import AlreadyExistsError, NotFoundError, new_id, now_ms
from loopml.registry._entities import (
    AliasMove,
    Approval,
    GateOutcome,
    GateReport,
    ModelVersion,
    RegisteredModel,
)
from loopml.store import schema

M = schema.registered_models
V = schema.model_versions
A = schema.model_aliases
MOVES = schema.alias_moves
G = schema.gate_results
AP = schema.approvals


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _aliases(conn: Connection, model_id: str) -> dict[str, int]:
    rows = conn.execute(select(A.c.alias, A.c.version).where(A.c.model_id == model_id))
    return {row.alias: row.version for row in rows}


def _model(conn: Connection, row: Any) -> RegisteredModel:
    return RegisteredModel(
        id=row.id,
        name=row.name,
        description=row.description,
        requires_approval=bool(row.requires_approval),
        gates=orjson.loads(row.gates),
        card=orjson.loads(row.card),
        created_ms=row.created_ms,
        created_by=row.created_by,
        aliases=_aliases(conn, row.id),
    )


def find_model(conn: Connection, name: str) -> RegisteredModel | None:
    row = conn.execute(select(M).where(M.c.name == name)).first()
    return None if row is None else _model(conn, row)


def get_model(conn: Connection, name: str) -> RegisteredModel:
    found = find_model(conn, name)
    if found is None:
        raise NotFoundError(f"no registered model {name!r}")
    return found


def list_models(conn: Connection) -> list[tuple[RegisteredModel, int]]:
    query = select(V.c.model_id, func.max(V.c.version)).group_by(V.c.model_id)
    counts = {row[0]: row[1] for row in conn.execute(query)}
    rows = conn.execute(select(M).order_by(M.c.name)).all()
    return [(_model(conn, row), int(counts.get(row.id, 0) or 0)) for row in rows]


def insert_model(conn: Connection, values: dict[str, Any]) -> None:
    if find_model(conn, values["name"]) is not None:
        raise AlreadyExistsError(f"model {values['name']!r} already exists")
    conn.execute(insert(M), [{"id": new_id(), "created_ms": now_ms(), **values}])


def update_model(conn: Connection, model_id: str, **values: Any) -> None:
    conn.execute(update(M).where(M.c.id == model_id).values(**values))


def _version(row: Any, name: str, aliases: dict[str, int]) -> ModelVersion:
    return ModelVersion(
        id=row.id,
        model=name,
        version=row.version,
        flavor=row.flavor,
        artifact=row.artifact,
        signature=orjson.loads(row.signature),
        libraries=orjson.loads(row.libraries),
        metrics=orjson.loads(row.metrics),
        run_id=row.run_id,
        pipeline_run_id=row.pipeline_run_id,
        dataset=row.dataset,
        split=orjson.loads(row.split) if row.split else None,
        profile=row.profile,
        code_version=row.code_version,
        description=row.description,
        extra=orjson.loads(row.extra),
        created_ms=row.created_ms,
        created_by=row.created_by,
        aliases=sorted(a for a, v in aliases.items() if v == row.version),
    )


def next_version(conn: Connection, model_id: str) -> int:
    current = conn.execute(select(func.max(V.c.version)).where(V.c.model_id == model_id)).scalar()
    return int(current or 0) + 1


def insert_version(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(V), [values])


def update_version_extra(conn: Connection, version_id: str, extra: dict[str, Any]) -> None:
    """Replace a version's ``extra`` JSON (derived artifacts such as an ONNX export)."""
    conn.execute(update(V).where(V.c.id == version_id).values(extra=dumps(extra)))


def list_versions(conn: Connection, model: RegisteredModel) -> list[ModelVersion]:
    rows = conn.execute(select(V).where(V.c.model_id == model.id).order_by(V.c.version))
    return [_version(row, model.name, model.aliases) for row in rows]


def get_version(conn: Connection, model: RegisteredModel, which: str | int | None) -> ModelVersion:
    """Version ``which``: a number, an alias, or None for the newest."""
    query = select(V).where(V.c.model_id == model.id)
    if which is None:
        query = query.order_by(V.c.version.desc()).limit(1)
        label = "any version"
    elif isinstance(which, int) or str(which).isdigit():
        query = query.where(V.c.version == int(which))
        label = f"version {which}"
    else:
        if which not in model.aliases:
            have = ", ".join(sorted(model.aliases)) or "none"
            raise NotFoundError(f"model {model.name!r} has no alias {which!r} (aliases: {have})")
        query = query.where(V.c.version == model.aliases[str(which)])
        label = f"alias {which}"
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"model {model.name!r} has no {label}")
    return _version(row, model.name, model.aliases)


def move_alias(
    conn: Connection,
    model: RegisteredModel,
    alias: str,
    version: int | None,
    actor: str,
    reason: str | None,
) -> int | None:
    """Point ``alias`` at ``version`` (None removes it); returns where it pointed before."""
    before = model.aliases.get(alias)
    now = now_ms()
    conn.execute(delete(A).where(A.c.model_id == model.id, A.c.alias == alias))
    if version is not None:
        conn.execute(
            insert(A),
            [
                {
                    "model_id": model.id,
                    "alias": alias,
                    "version": version,
                    "updated_ms": now,
                    "updated_by": actor,
                }
            ],
        )
    conn.execute(
        insert(MOVES),
        [
            {
                "model_id": model.id,
                "alias": alias,
                "from_version": before,
                "to_version": version,
                "actor": actor,
                "reason": reason,
                "ts_ms": now,
            }
        ],
    )
    return before


def alias_history(conn: Connection, model: RegisteredModel, alias: str | None) -> list[AliasMove]:
    query = select(MOVES).where(MOVES.c.model_id == model.id).order_by(MOVES.c.id)
    if alias is not None:
        query = query.where(MOVES.c.alias == alias)
    return [
        AliasMove(r.alias, r.from_version, r.to_version, r.actor, r.reason, r.ts_ms)
        for r in conn.execute(query)
    ]


def gates_digest(gates: list[dict[str, Any]]) -> str:
    """Names the gate list a result was evaluated against."""
    import blake3

    return "blake3:" + blake3.blake3(dumps(gates).encode()).hexdigest()


def insert_gate_report(
    conn: Connection, version_id: str, report: GateReport, gates: list[dict[str, Any]]
) -> None:
    outcomes = [o.__dict__ for o in report.outcomes]
    row = {
        "version_id": version_id,
        "passed": int(report.passed),
        "gates_digest": gates_digest(gates),
        "results": dumps(outcomes),
        "actor": report.actor,
        "ts_ms": report.ts_ms,
    }
    conn.execute(insert(G), [row])


def latest_gate_report(
    conn: Connection, version: ModelVersion, gates: list[dict[str, Any]] | None = None
) -> GateReport | None:
    """The newest result (by insertion); None when none, or when ``gates`` changed since."""
    row = conn.execute(
        select(G).where(G.c.version_id == version.id).order_by(G.c.id.desc()).limit(1)
    ).first()
    if row is None or (gates is not None and row.gates_digest != gates_digest(gates)):
        return None
    outcomes = [GateOutcome(**item) for item in orjson.loads(row.results)]
    return GateReport(version.ref, bool(row.passed), outcomes, row.actor, row.ts_ms)


def insert_approval(conn: Connection, version_id: str, approval: Approval) -> None:
    conn.execute(insert(AP), [{"version_id": version_id, **approval.__dict__}])


def approvals(conn: Connection, version: ModelVersion) -> list[Approval]:
    """Decisions in the order they were recorded (the last one counts)."""
    rows = conn.execute(select(AP).where(AP.c.version_id == version.id).order_by(AP.c.id))
    return [Approval(r.decision, r.actor, r.comment, r.ts_ms) for r in rows]
