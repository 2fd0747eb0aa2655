"""Reading the prediction log for the monitor: the segments a monitoring state has not
read yet, and what one segment adds to its windows.

The monitor reads the log's segment index (``prediction_segments``) and the segment blobs
(Arrow IPC files, one deployment each) directly, so that a pass reads exactly the segments
it has not read, however late one arrives (a dead server's journal recovered a day later).
Records still in a live server's journal are not read: they reach the monitor in the
segment its log cuts every couple of seconds.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson
import sqlalchemy as sa

from loopml.monitoring import _drift_link
from loopml.monitoring._predictions import canonical
from loopml.monitoring._versions import VersionCache, VersionInfo
from loopml.monitoring._window_state import VersionSketch, WindowState
from loopml.monitoring._windows import WindowSpec
from loopml.store import schema

__all__ = ["INDEX_SCHEMA", "LogSegment", "ingest_segment", "read_segment", "unread_segments"]

_SEGS = schema.prediction_segments
_READ = schema.monitor_segments

# The monitor's join index of one log segment: where each prediction went, what it said.
INDEX_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("window_index", pa.int64()),
        ("model_version", pa.string()),
        ("y_pred", pa.string()),
        ("proba", pa.string()),
        ("fallback", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class LogSegment:
    digest: str
    first_id: str
    last_id: str
    rows: int
    created_ms: int


def unread_segments(conn: sa.Connection, deployment: str, state_id: str) -> list[LogSegment]:
    """The deployment's segments the state has not read, in the order they entered the log."""
    read = sa.select(_READ.c.digest).where(_READ.c.state_id == state_id)
    query = (
        sa.select(_SEGS.c.digest, _SEGS.c.first_id, _SEGS.c.last_id, _SEGS.c.rows)
        .add_columns(_SEGS.c.created_ms)
        .where(_SEGS.c.deployment == deployment, _SEGS.c.digest.not_in(read))
        .order_by(_SEGS.c.created_ms, _SEGS.c.digest)
    )
    return [LogSegment(*row) for row in conn.execute(query)]


def read_segment(data: bytes) -> pa.Table:
    """A segment blob's records, ordered by time then id."""
    table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    return table.sort_by([("ts_ms", "ascending"), ("prediction_id", "ascending")])


def _inputs_table(texts: list[str]) -> pa.Table:
    """The ``inputs`` JSON objects as one Arrow table (a column per field)."""
    if not texts:
        return pa.table({})
    data = "\n".join(texts).encode()
    try:
        return pajson.read_json(pa.BufferReader(data))
    except pa.ArrowInvalid:  # a field whose type changes between rows: let pandas unify
        import pandas as pd

        frame = pd.DataFrame([json.loads(t) for t in texts])
        return pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None))


def _answer(info: VersionInfo, output: Any) -> tuple[str | None, str | None, float | None]:
    """The canonical prediction, the probabilities in class order (JSON) and the positive
    class's probability, of one logged output."""
    if not isinstance(output, dict) or output.get("prediction") is None:
        return None, None, None
    label = canonical(output["prediction"])
    probabilities = output.get("probabilities")
    if not isinstance(probabilities, dict) or not info.class_keys:
        return label, None, None
    values = [probabilities.get(key) for key in info.class_keys]
    if any(not isinstance(v, int | float) for v in values):
        return label, None, None
    positive = info.positive_key
    score = float(probabilities[positive]) if positive is not None else None
    return label, json.dumps(values), score


def ingest_segment(
    table: pa.Table,
    spec: WindowSpec,
    ordinal: int,
    window: Callable[[int], WindowState],
    versions: VersionCache,
) -> pa.Table:
    """Add ``table``'s rows to their windows (``window(i)`` gives window ``i``'s state);
    ``ordinal`` is the number of rows read before it (count windows). Returns the
    segment's join index in :data:`INDEX_SCHEMA`."""
    n = table.num_rows
    stamps = np.asarray(table["ts_ms"].to_numpy(), dtype=np.int64)
    if spec.by_time:
        assert spec.size_ms is not None
        indices = stamps // spec.size_ms
    else:
        assert spec.rows is not None
        indices = (ordinal + np.arange(n, dtype=np.int64)) // spec.rows
    refs = table["model_version"].to_pylist()
    outputs = [json.loads(t) for t in table["output"].to_pylist()]
    inputs = table["inputs"].to_pylist()
    latency = np.asarray(table["latency_ms"].to_numpy(zero_copy_only=False), dtype=np.float64)
    fallback = np.asarray(table["fallback"].to_numpy(zero_copy_only=False), dtype=bool)
    shadow = np.asarray(table["shadow"].to_numpy(zero_copy_only=False), dtype=bool)
    groups: dict[tuple[int, str], list[int]] = {}
    for row, (index, ref) in enumerate(zip(indices.tolist(), refs, strict=True)):
        groups.setdefault((index, ref), []).append(row)
    y_pred: list[str | None] = [None] * n
    proba: list[str | None] = [None] * n
    for (index, ref), rows in groups.items():
        info = versions.get(ref)
        state = window(index)
        state.rows += len(rows)
        if not spec.by_time:  # a count window spans the times of its rows
            state.start_ms = min(state.start_ms, int(stamps[rows[0]]))
            state.end_ms = max(state.end_ms, int(stamps[rows[-1]]))
        sketch = state.versions.setdefault(ref, VersionSketch())
        picked = np.asarray(rows)
        errors = fallback[picked].copy()
        for position, row in enumerate(rows):
            label, probs, score = _answer(info, outputs[row])
            y_pred[row], proba[row] = label, probs
            if label is None:
                errors[position] = True
            elif not fallback[row]:
                if info.task == "regression":
                    with contextlib.suppress(TypeError, ValueError):  # not a number
                        sketch.predictions.add_value(float(outputs[row]["prediction"]))
                else:
                    sketch.predictions.add_class(label)
                    if score is not None:
                        sketch.predictions.add_probability(score)
        sketch.ops.add(latency[picked], fallback[picked], errors, shadow[picked])
        if info.profile is not None and info.features:
            if sketch.drift is None:
                sketch.drift = _drift_link.empty_sketch(info.profile, info.features)
            sketch.drift = _drift_link.update_sketch(
                sketch.drift, _inputs_table([inputs[row] for row in rows])
            )
    return pa.table(
        [
            table["prediction_id"],
            pa.array(indices, pa.int64()),
            table["model_version"],
            pa.array(y_pred, pa.string()),
            pa.array(proba, pa.string()),
            table["fallback"],
        ],
        schema=INDEX_SCHEMA,
    )
