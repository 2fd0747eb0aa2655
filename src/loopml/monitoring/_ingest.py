"""Reading the prediction log for the monitor: the segments a monitoring state has not
read yet, and what one segment adds to its windows.

The monitor reads the log's segment index (``prediction_segments``) and the segment blobs
(Arrow IPC files, one deployment each) directly, so that a pass reads exactly the segments
it has not read, however late one arrives (a dead server's journal recovered a day later).
Records still in a live server's journal are not read: they reach the monitor in the
segment its log cuts every couple of seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from loopml.monitoring import _drift_link
from loopml.monitoring._inputs import feature_table
from loopml.monitoring._outputs import Outputs
from loopml.monitoring._versions import VersionCache
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
        ("proba", pa.list_(pa.float64())),  # in the version's class order
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


def _group(
    indices: np.ndarray[Any, Any], refs: list[str]
) -> dict[tuple[int, str], np.ndarray[Any, Any]]:
    """Row positions by (window, model version), each in segment order."""
    names, codes = np.unique(np.asarray(refs, dtype=object), return_inverse=True)
    base = int(indices.min())
    keys = (indices - base) * len(names) + codes.ravel()
    found, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(found)))[:-1]
    return {
        (base + int(key) // len(names), str(names[int(key) % len(names)])): rows
        for key, rows in zip(found.tolist(), np.split(order, bounds), strict=True)
    }


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
    if not n:
        return INDEX_SCHEMA.empty_table()
    stamps = np.asarray(table["ts_ms"].to_numpy(), dtype=np.int64)
    if spec.by_time:
        assert spec.size_ms is not None
        indices = stamps // spec.size_ms
    else:
        assert spec.rows is not None
        indices = (ordinal + np.arange(n, dtype=np.int64)) // spec.rows
    outputs = Outputs(table["output"].to_pylist())
    labels = outputs.labels()
    answered = np.asarray([label is not None for label in labels], dtype=bool)
    inputs = table["inputs"].to_pylist()
    latency = np.asarray(table["latency_ms"].to_numpy(zero_copy_only=False), dtype=np.float64)
    fallback = np.asarray(table["fallback"].to_numpy(zero_copy_only=False), dtype=bool)
    shadow = np.asarray(table["shadow"].to_numpy(zero_copy_only=False), dtype=bool)
    proba: list[list[float] | None] = [None] * n
    numbers: np.ndarray[Any, Any] | None = None
    for (index, ref), rows in _group(indices, table["model_version"].to_pylist()).items():
        info = versions.get(ref)
        state = window(index)
        state.rows += len(rows)
        if not spec.by_time:  # a count window spans the times of its rows
            state.start_ms = min(state.start_ms, int(stamps[rows[0]]))
            state.end_ms = max(state.end_ms, int(stamps[rows[-1]]))
        sketch = state.versions.setdefault(ref, VersionSketch())
        failed = fallback[rows] | ~answered[rows]  # a fallback answers only a failure
        sketch.ops.add(latency[rows], fallback[rows], failed, shadow[rows])
        model = rows[answered[rows] & ~fallback[rows]]  # the model's own answers
        if info.task == "regression":
            numbers = outputs.numbers() if numbers is None else numbers
            sketch.predictions.add_values(numbers[model])
        else:
            sketch.predictions.add_classes([labels[i] for i in model.tolist()])
        if info.class_keys:
            matrix = outputs.probabilities(info.class_keys, rows)
            complete = np.isfinite(matrix).all(axis=1)
            for row, values, ok in zip(
                rows.tolist(), matrix.tolist(), complete.tolist(), strict=True
            ):
                proba[row] = values if ok else None
            if info.positive_key is not None:
                column = info.class_keys.index(info.positive_key)
                mine = complete & answered[rows] & ~fallback[rows]
                sketch.predictions.add_probabilities(matrix[mine, column])
        if info.profile is not None and info.features:
            if sketch.drift is None:
                sketch.drift = _drift_link.empty_sketch(info.profile, info.features)
            table_in, invalid = feature_table(
                [inputs[row] for row in rows.tolist()], info.profile, info.features
            )
            sketch.drift = _drift_link.update_sketch(sketch.drift, table_in)
            for name, count in invalid.items():
                sketch.invalid[name] = sketch.invalid.get(name, 0) + count
    return pa.table(
        [
            table["prediction_id"],
            pa.array(indices, pa.int64()),
            table["model_version"],
            pa.array(labels, pa.string()),
            pa.array(proba, pa.list_(pa.float64())),
            table["fallback"],
        ],
        schema=INDEX_SCHEMA,
    )
