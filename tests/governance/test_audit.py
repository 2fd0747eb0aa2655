"""The audit chain: append, list, verify, and tampering done with raw SQL."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from loopml.core import ValidationError
from loopml.governance import (
    GENESIS_HASH,
    AuditEntry,
    Governance,
    append_audit,
    entry_hash,
    list_audit,
    verify_audit,
)
from loopml.governance import _audit as audit_module
from loopml.store import MetadataStore


def append(store: MetadataStore, n: int, actor: str = "alice") -> list[AuditEntry]:
    def work(conn: Connection) -> list[AuditEntry]:
        return [
            append_audit(
                conn,
                actor=actor,
                action="model.promote" if i % 2 else "data.ingest",
                target=f"model:churn@{i}",
                before={"version": i, "é": "ü"},
                after={"version": i + 1},
                reason=f"step {i}" if i % 3 else None,
            )
            for i in range(n)
        ]

    return store.transact(work)


def verify(store: MetadataStore, anchor: tuple[int, str] | None = None):  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return verify_audit(conn, anchor=anchor)


def raw(store: MetadataStore, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_append_chains_rows(gov: Governance) -> None:
    assert verify(gov.store).ok and verify(gov.store).rows == 0
    first, second, *_ = append(gov.store, 5)
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert second.prev_hash == first.hash and second.seq == 2
    assert json.loads(first.before or "") == {"version": 0, "é": "ü"}
    assert first.before == '{"version":0,"é":"ü"}'  # canonical: sorted keys, no spaces
    report = verify(gov.store)
    assert report.ok and report.rows == 5 and report.head_seq == 5 and report.problem is None
    with gov.store.read() as conn:
        assert report.head_hash == list_audit(conn, 1)[0].hash


def test_list_filters(gov: Governance) -> None:
    append(gov.store, 4)
    append(gov.store, 2, actor="bob")
    with gov.store.read() as conn:
        assert [e.seq for e in list_audit(conn, 3)] == [6, 5, 4]
        assert {e.actor for e in list_audit(conn, actor="bob")} == {"bob"}
        assert {e.action for e in list_audit(conn, action="model.*")} == {"model.promote"}
        assert len(list_audit(conn, action="model.promote")) == 3
        assert len(list_audit(conn, target_prefix="model:churn@1")) == 2
        assert list_audit(conn, target_prefix="model:churn%") == []  # no LIKE wildcards


def test_append_refuses_secrets_and_bad_fields(gov: Governance) -> None:
    secret = "lml_" + "Q" * 43
    for kwargs in (
        {"after": {"token": secret}},
        {"reason": f"rotated {secret}"},
        {"target": secret},
    ):
        with pytest.raises(ValidationError, match="API token"):
            gov.store.transact(
                lambda conn, kw=kwargs: append_audit(  # type: ignore[misc]
                    conn, actor="a", action="token.create", **{"target": "t", **kw}
                )
            )
    with pytest.raises(ValidationError, match="audit action"):
        gov.store.transact(lambda conn: append_audit(conn, actor="a", action="", target="t"))
    with pytest.raises(ValidationError, match="JSON"):
        gov.store.transact(
            lambda conn: append_audit(conn, actor="a", action="x", target="t", after={1j})
        )
    assert verify(gov.store).rows == 0


def test_concurrent_appenders_keep_one_chain(gov: Governance) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for _ in range(8):
                append(gov.store, 2, actor=name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = verify(gov.store)
    assert report.ok and report.rows == 64


def test_edited_row_is_named(gov: Governance) -> None:
    append(gov.store, 6)
    raw(gov.store, "UPDATE audit_log SET after = :v WHERE seq = 4", v='{"version":99}')
    report = verify(gov.store)
    assert not report.ok and report.bad_seq == 4 and report.rows == 3
    assert report.problem == "row 4 was edited: its content no longer matches its hash"


def test_any_edited_column_is_caught(gov: Governance) -> None:
    rows = append(gov.store, 3)
    for column in ("ts_ms", "actor", "action", "target", "before", "after", "reason", "hash"):
        value: object = 0 if column == "ts_ms" else "mallory"
        raw(gov.store, f"UPDATE audit_log SET {column} = :v WHERE seq = 2", v=value)
        assert verify(gov.store).bad_seq == 2, column
        original = getattr(rows[1], column)
        raw(gov.store, f"UPDATE audit_log SET {column} = :v WHERE seq = 2", v=original)
        assert verify(gov.store).ok, column


def test_deleted_middle_row_is_named(gov: Governance) -> None:
    append(gov.store, 6)
    raw(gov.store, "DELETE FROM audit_log WHERE seq = 3")
    report = verify(gov.store)
    assert not report.ok and report.bad_seq == 3 and report.rows == 2
    assert report.problem is not None and report.problem.startswith("row 3 is missing: deleted")


def test_deleted_first_rows_are_named(gov: Governance) -> None:
    append(gov.store, 4)
    raw(gov.store, "DELETE FROM audit_log WHERE seq <= 2")
    report = verify(gov.store)
    assert report.bad_seq == 1 and report.problem is not None
    assert report.problem.startswith("rows 1-2 are missing")


def renumber_from(store: MetadataStore, seq: int, delta: int) -> None:
    raw(store, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= :s", s=seq)
    raw(store, "UPDATE audit_log SET seq = seq - 1000 + :d WHERE seq >= 1000", d=delta)


def forge(store: MetadataStore, seq: int, prev_hash: str, good_hash: bool = True) -> None:
    fields = {
        "seq": seq, "ts_ms": 1, "actor": "mallory", "action": "model.promote",
        "target": "model:churn@9", "before": None, "after": '{"version":9}', "reason": None,
    }  # fmt: skip
    digest = entry_hash(prev_hash, **fields) if good_hash else "f" * 64  # type: ignore[arg-type]
    raw(
        store,
        "INSERT INTO audit_log (seq, ts_ms, actor, action, target, before, after, reason, "
        "prev_hash, hash) VALUES (:seq, :ts_ms, :actor, :action, :target, :before, :after, "
        ":reason, :prev_hash, :hash)",
        **fields,
        prev_hash=prev_hash,
        hash=digest,
    )


def test_inserted_row_with_a_valid_hash_is_caught(gov: Governance) -> None:
    rows = append(gov.store, 5)
    renumber_from(gov.store, 3, 1)  # make room: rows 3..5 become 4..6
    forge(gov.store, 3, prev_hash=rows[1].hash)  # a perfectly chained forgery
    report = verify(gov.store)
    assert not report.ok and report.bad_seq == 4 and report.rows == 3
    assert report.problem == "row 3 was inserted: row 4 chains to row 2, not to row 3"


def test_inserted_row_with_a_bad_hash_is_caught(gov: Governance) -> None:
    rows = append(gov.store, 5)
    renumber_from(gov.store, 3, 1)
    forge(gov.store, 3, prev_hash=rows[1].hash, good_hash=False)
    report = verify(gov.store)
    assert not report.ok and report.bad_seq == 3
    assert report.problem == "row 3 was edited: its content no longer matches its hash"


def test_deleted_and_renumbered_row_is_caught(gov: Governance) -> None:
    append(gov.store, 5)
    raw(gov.store, "DELETE FROM audit_log WHERE seq = 3")
    renumber_from(gov.store, 4, -1)
    report = verify(gov.store)
    assert not report.ok and report.bad_seq == 3
    assert report.problem is not None and "does not chain to row 2" in report.problem


def test_anchor_catches_truncation_and_a_rewritten_chain(gov: Governance) -> None:
    append(gov.store, 5)
    head = verify(gov.store)
    anchor = (head.head_seq, head.head_hash)
    assert verify(gov.store, anchor).ok
    raw(gov.store, "DELETE FROM audit_log WHERE seq = 5")  # truncation: the chain alone is fine
    assert verify(gov.store).ok
    report = verify(gov.store, anchor)
    assert not report.ok and report.problem is not None and "deleted from the end" in report.problem

    raw(gov.store, "DELETE FROM audit_log")  # a whole new, self-consistent chain
    append(gov.store, 6, actor="mallory")
    assert verify(gov.store).ok
    rewritten = verify(gov.store, anchor)
    assert not rewritten.ok and rewritten.bad_seq == 5
    assert rewritten.problem is not None and "anchor" in rewritten.problem


def test_verify_pages_through_a_long_log(gov: Governance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "_PAGE", 3)
    append(gov.store, 10)
    assert verify(gov.store).rows == 10
    raw(gov.store, "DELETE FROM audit_log WHERE seq = 7")
    report = verify(gov.store)
    assert report.bad_seq == 7 and report.rows == 6
