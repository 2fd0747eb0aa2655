"""The prediction log's segments: writing them, and the reads the in-process log and the
out-of-process reader share (find by id, newest records, records since a time).

A segment is one Arrow IPC blob (zstd) of one deployment's records in the artifact store,
named by its digest and indexed by a ``prediction_segments`` row (time and id ranges).
Both readers look at records not yet in a segment first (the log's live records, the
reader's journals) and at segments second: a writer records a segment before it lets go
of those records, so a record moving between the two is seen in one or the other, and
possibly both (duplicates are dropped by id).
"""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.artifacts import ArtifactStore
from loopml.core import now_ms
from loopml.serving._predlog_record import (
    PredictionRecord,
    records_from_table,
    segment_bytes,
    table_from_bytes,
)
from loopml.store import MetadataStore, schema

__all__ = ["find_in_segments", "newest_first", "segment_records", "tail", "write_segments"]

_SEGS = schema.prediction_segments


def write_segments(
    artifacts: ArtifactStore,
    store: MetadataStore,
    records: list[PredictionRecord],
    segment_rows: int,
) -> int:
    """Store ``records`` as segments (per deployment, at most ``segment_rows`` each) and
    index them; the number of new index rows (a segment indexed before is not again)."""
    by_deployment: dict[str, list[PredictionRecord]] = {}
    for record in records:
        by_deployment.setdefault(record.deployment, []).append(record)
    rows: list[dict[str, Any]] = []
    with artifacts.batch():  # every blob is on disk before a row names it
        for deployment, group in sorted(by_deployment.items()):
            for start in range(0, len(group), segment_rows):
                part = group[start : start + segment_rows]
                info = artifacts.put_bytes(segment_bytes(part))
                ids = [r.prediction_id for r in part]
                stamps = [r.ts_ms for r in part]
                rows.append(
                    {
                        "digest": info.digest,
                        "deployment": deployment,
                        "first_ts_ms": min(stamps),
                        "last_ts_ms": max(stamps),
                        "first_id": min(ids),
                        "last_id": max(ids),
                        "rows": len(part),
                        "created_ms": now_ms(),
                    }
                )

    def insert(conn: sa.Connection) -> int:
        digests = [row["digest"] for row in rows]
        known = set(conn.scalars(sa.select(_SEGS.c.digest).where(_SEGS.c.digest.in_(digests))))
        new = [row for row in rows if row["digest"] not in known]
        if new:
            conn.execute(_SEGS.insert(), new)
        return len(new)

    added: int = store.transact(insert)
    return added


def newest_first(records: list[PredictionRecord]) -> list[PredictionRecord]:
    """``records`` without duplicate ids, newest first."""
    unique = {r.prediction_id: r for r in records}
    return sorted(unique.values(), key=lambda r: (r.ts_ms, r.prediction_id), reverse=True)


def segment_records(
    artifacts: ArtifactStore, digest: str, newest: int | None = None
) -> list[PredictionRecord]:
    """A segment's records; only its ``newest`` ones when given (decoding each record's
    JSON costs more than reading the whole segment)."""
    table = table_from_bytes(artifacts.get_bytes(digest))
    if newest is not None:
        order = [("ts_ms", "descending"), ("prediction_id", "descending")]
        table = table.sort_by(order).slice(0, newest)
    return records_from_table(table)


def find_in_segments(
    artifacts: ArtifactStore, store: MetadataStore, prediction_id: str
) -> PredictionRecord | None:
    """The record with ``prediction_id`` from the segments whose id range covers it."""
    query = sa.select(_SEGS.c.digest).where(
        _SEGS.c.first_id <= prediction_id, _SEGS.c.last_id >= prediction_id
    )
    with store.read() as conn:
        digests = list(conn.scalars(query))
    for digest in digests:
        table = table_from_bytes(artifacts.get_bytes(digest))
        hit = table.filter(pc.equal(table["prediction_id"], prediction_id))
        if hit.num_rows:
            return records_from_table(hit.slice(0, 1))[0]
    return None


def tail(
    artifacts: ArtifactStore,
    store: MetadataStore,
    deployment: str,
    unsegmented: list[PredictionRecord],
    n: int,
) -> list[PredictionRecord]:
    """The ``n`` newest records of ``deployment``: ``unsegmented`` ones (read first by the
    caller) and the segments', newest segments first, stopping once older ones cannot
    matter."""
    query = (
        sa.select(_SEGS.c.digest, _SEGS.c.last_ts_ms)
        .where(_SEGS.c.deployment == deployment)
        .order_by(_SEGS.c.last_ts_ms.desc())
    )
    with store.read() as conn:
        segments = list(conn.execute(query))
    found = list(unsegmented)
    for digest, last_ts in segments:
        found = newest_first(found)
        if len(found) >= n and found[n - 1].ts_ms > last_ts:
            break  # this segment and every older one hold nothing newer
        found += segment_records(artifacts, digest, newest=n)
    return newest_first(found)[:n]
