"""Late labels: joining feedback to the predictions the monitor has read, by id.

Each label's prediction is found through the monitor's own join index (one small blob per
log segment read: prediction id, window, version, answer), never by reading the log
again. Labels are read from the state's label watermark on, minus an overlap that covers
labels committed late by a concurrent writer; applying a label twice changes nothing.
A label whose prediction the monitor has not read yet (it was still in a server's
journal) holds the watermark back so the next pass tries again, for up to an hour.
A monitor that keeps running remembers the labels its committed passes applied (by
their row ids), so the overlap is not matched again (with labels arriving fast, it can
hold most of them), nor even read again when nothing new was stored in it.
"""

from __future__ import annotations

import bisect
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.artifacts import ArtifactStore
from loopml.monitoring._predictions import canonical
from loopml.serving import FeedbackLabel
from loopml.store import MetadataStore, schema

__all__ = ["LABEL_OVERLAP_MS", "LABEL_WAIT_MS", "Matched", "match_labels"]

LABEL_OVERLAP_MS = 60_000
LABEL_WAIT_MS = 3_600_000
G = schema.monitor_segments


@dataclass
class Matched:
    """Labelled rows per window (dicts in the performance module's label schema), and
    the new label watermark."""

    by_window: dict[int, list[dict[str, Any]]]
    unmatched: int
    fallback: int  # labels of fallback answers (not the model's: left out)
    labels_ms: int | None
    applied: dict[int, int] = field(default_factory=dict)  # matched now: {id: ts_ms}


def _index_rows(
    store: MetadataStore, artifacts: ArtifactStore, state_id: str, wanted: list[str]
) -> dict[str, dict[str, Any]]:
    """``{prediction_id: join-index row}`` for the ids found in segments the state read."""
    found: dict[str, dict[str, Any]] = {}
    if not wanted:
        return found
    query = sa.select(G.c.index_digest, G.c.first_id, G.c.last_id).where(
        G.c.state_id == state_id, G.c.first_id <= wanted[-1], G.c.last_id >= wanted[0]
    )
    with store.read() as conn:
        segments = list(conn.execute(query))
    for digest, first_id, last_id in segments:
        start = bisect.bisect_left(wanted, first_id)
        end = bisect.bisect_right(wanted, last_id)
        candidates = [pid for pid in wanted[start:end] if pid not in found]
        if not candidates:
            continue
        table = pa.ipc.open_file(pa.BufferReader(artifacts.get_bytes(digest))).read_all()
        hits = table.filter(pc.is_in(table["prediction_id"], pa.array(candidates)))
        for row in hits.to_pylist():
            found[row["prediction_id"]] = row
    return found


def match_labels(
    store: MetadataStore,
    artifacts: ArtifactStore,
    state_id: str,
    labels: list[FeedbackLabel],
    previous_ms: int | None,
    now: int,
    applied: Container[int] = frozenset(),
) -> Matched:
    """Find the window and answer of each label's prediction; labels whose id is in
    ``applied`` (applied by an earlier pass) only count towards the watermark."""
    fresh = [label for label in labels if label.id not in applied]
    index = _index_rows(
        store, artifacts, state_id, sorted({label.prediction_id for label in fresh})
    )
    by_window: dict[int, list[dict[str, Any]]] = {}
    waiting: list[int] = []
    unmatched = fallback = 0
    done: dict[int, int] = {}
    for label in fresh:  # oldest first: a correction comes after what it corrects
        row = index.get(label.prediction_id)
        if row is None:
            unmatched += 1
            if now - label.ts_ms < LABEL_WAIT_MS:
                waiting.append(label.ts_ms)
            continue
        done[label.id] = label.ts_ms
        if row["fallback"]:
            fallback += 1
            continue
        by_window.setdefault(row["window_index"], []).append(
            {
                "prediction_id": label.prediction_id,
                "model_version": row["model_version"],
                "y_true": canonical(label.label),
                "y_pred": row["y_pred"],
                "proba": row["proba"],
                "label_ts": label.ts_ms,
            }
        )
    newest = max((label.ts_ms for label in labels), default=previous_ms)
    labels_ms = min(waiting) if waiting else newest
    return Matched(by_window, unmatched, fallback, labels_ms, done)
