"""The append-only, hash-chained audit log.

Each row's ``hash`` is ``sha256(prev_hash + canonical JSON of its content)``, and
``prev_hash`` is the hash of the row before it (64 zeros for row 1). Editing a row
breaks its own hash; deleting or inserting one breaks the sequence or the link of
the next row. :func:`verify_audit` walks the chain and names the first broken row.

Call :func:`append_audit` inside the same ``store.transact(work)`` as the change it
records, so the change and its audit row commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import ValidationError, now_ms
from loopml.store import schema

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditReport",
    "append_audit",
    "entry_hash",
    "list_audit",
    "verify_audit",
]

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key that serializes appenders on PostgreSQL ("loopml" + 1).
_PG_LOCK_KEY = 0x6C6F6F706D6C0001
_PAGE = 2000
# What a loopml API token looks like; such a string must never reach the log.
_SECRET = re.compile(r"lml_[A-Za-z0-9_-]{20,}")
_LIMITS = {"actor": 128, "action": 64, "target": 512}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log; ``before``/``after`` are JSON text (or None)."""

    seq: int
    ts_ms: int
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None
    reason: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The outcome of :func:`verify_audit`.

    ``rows`` counts the rows checked intact before the first problem (all of them
    when ``ok``); ``head_seq``/``head_hash`` are the last intact row, to be recorded
    elsewhere and checked later as an anchor.
    """

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"audit before/after must be JSON-serializable: {exc}") from exc


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    ts_ms: int,
    actor: str,
    action: str,
    target: str,
    before: str | None,
    after: str | None,
    reason: str | None,
) -> str:
    """The hash a row with this content must carry after a row hashed ``prev_hash``."""
    content = {
        "seq": seq,
        "ts_ms": ts_ms,
        "actor": actor,
        "action": action,
        "target": target,
        "before": before,
        "after": after,
        "reason": reason,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _head(conn: Connection) -> tuple[int, str]:
    t = schema.audit_log
    row = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))


def append_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one row to the audit log, inside the caller's write transaction.

    Use it in the work function given to ``MetadataStore.transact`` with the change
    it records. On PostgreSQL it takes a transaction-level advisory lock, held to the
    commit, so appenders queue; call it last in the work function to keep that short.

    Args:
        actor: who (an :class:`Identity`'s name).
        action: what, e.g. ``"model.promote"``.
        target: on what, e.g. ``"model:churn@3"``.
        before: the state before, any JSON-serializable value (None: nothing).
        after: the state after.
        reason: why, in the actor's words.

    Raises:
        ValidationError: a field is empty or too long, a value is not JSON, or the
            row would contain something that looks like an API token.
    """
    for field, value in (("actor", actor), ("action", action), ("target", target)):
        if not value or len(value) > _LIMITS[field]:
            raise ValidationError(f"audit {field} must be 1-{_LIMITS[field]} characters")
    before_text, after_text = _json_text(before), _json_text(after)
    for text in (actor, target, before_text, after_text, reason):
        if text is not None and _SECRET.search(text):
            raise ValidationError("refusing to write an API token into the audit log")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    last_seq, prev_hash = _head(conn)
    fields: dict[str, Any] = {
        "seq": last_seq + 1,
        "ts_ms": now_ms(),
        "actor": actor,
        "action": action,
        "target": target,
        "before": before_text,
        "after": after_text,
        "reason": reason,
    }
    digest = entry_hash(prev_hash, **fields)
    conn.execute(sa.insert(schema.audit_log).values(**fields, prev_hash=prev_hash, hash=digest))
    return AuditEntry(**fields, prev_hash=prev_hash, hash=digest)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        ts_ms=int(row.ts_ms),
        actor=row.actor,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
        reason=row.reason,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _rows(conn: Connection) -> Iterator[AuditEntry]:
    t = schema.audit_log
    after: int | None = None
    while True:
        query = sa.select(t).order_by(t.c.seq).limit(_PAGE)
        if after is not None:
            query = query.where(t.c.seq > after)
        page = conn.execute(query).all()
        yield from (_entry(row) for row in page)
        if len(page) < _PAGE:
            return
        after = int(page[-1].seq)


def _recomputed(entry: AuditEntry) -> str:
    return entry_hash(
        entry.prev_hash,
        seq=entry.seq,
        ts_ms=entry.ts_ms,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        before=entry.before,
        after=entry.after,
        reason=entry.reason,
    )


def _link_problem(entry: AuditEntry, prev_hash: str, prev_prev_hash: str | None) -> str:
    if entry.seq == 1:
        return "row 1 does not start the chain: rows before it were deleted, or it was forged"
    if prev_prev_hash is not None and entry.prev_hash == prev_prev_hash:
        return (
            f"row {entry.seq - 1} was inserted: row {entry.seq} chains to row {entry.seq - 2}, "
            f"not to row {entry.seq - 1}"
        )
    return (
        f"row {entry.seq} does not chain to row {entry.seq - 1}: a row between them was "
        f"deleted or inserted, or row {entry.seq - 1} was rewritten"
    )


def verify_audit(conn: Connection, *, anchor: tuple[int, str] | None = None) -> AuditReport:
    """Walk the whole chain in ``seq`` order and report the first problem.

    Detects a row whose content no longer matches its hash (edited), a gap in
    ``seq`` (deleted), and a row that does not chain to the one before it (inserted,
    deleted and renumbered, or rewritten). ``anchor`` is a ``(seq, hash)`` recorded
    earlier (from a previous report's head): that row must still exist with that
    hash, which also catches a truncated or wholly rewritten chain.
    """
    count, head_seq, head_hash = 0, 0, GENESIS_HASH
    prev_prev: str | None = None

    def broken(problem: str, seq: int) -> AuditReport:
        return AuditReport(False, count, head_seq, head_hash, problem, seq)

    for entry in _rows(conn):
        expected = head_seq + 1
        if entry.seq != expected:
            missing = (
                f"row {expected} is missing"
                if entry.seq == expected + 1
                else f"rows {expected}-{entry.seq - 1} are missing"
            )
            return broken(
                f"{missing}: deleted (the log jumps from row {head_seq} to row {entry.seq})",
                expected,
            )
        if entry.prev_hash != head_hash:
            return broken(_link_problem(entry, head_hash, prev_prev), entry.seq)
        if _recomputed(entry) != entry.hash:
            return broken(
                f"row {entry.seq} was edited: its content no longer matches its hash", entry.seq
            )
        if anchor is not None and entry.seq == anchor[0] and entry.hash != anchor[1]:
            return broken(
                f"row {entry.seq} does not match the anchor: the chain was rewritten "
                "up to or past it",
                entry.seq,
            )
        count, head_seq, prev_prev, head_hash = count + 1, entry.seq, head_hash, entry.hash
    if anchor is not None and head_seq < anchor[0]:
        return broken(
            f"the log ends at row {head_seq} but the anchor names row {anchor[0]}: "
            "rows were deleted from the end",
            head_seq + 1,
        )
    return AuditReport(True, count, head_seq, head_hash)


def list_audit(
    conn: Connection,
    limit: int = 50,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_prefix: str | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` rows, newest first, optionally filtered.

    ``action`` matches exactly, or as a prefix when it ends in ``.`` or ``*``
    (``"model.*"``).
    """
    t = schema.audit_log
    query = sa.select(t).order_by(t.c.seq.desc()).limit(max(0, limit))
    if actor is not None:
        query = query.where(t.c.actor == actor)
    if action is not None:
        if action.endswith(("*", ".")):
            query = query.where(t.c.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            query = query.where(t.c.action == action)
    if target_prefix is not None:
        query = query.where(t.c.target.startswith(target_prefix, autoescape=True))
    return [_entry(row) for row in conn.execute(query)]


def lock_for_change(conn: Connection) -> None:
    """Serialize a check-then-write (no users yet, one admin left) with other changes.

    SQLite already serializes writers (``BEGIN IMMEDIATE``); on PostgreSQL this takes
    the audit chain's advisory lock, held to the end of the transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
