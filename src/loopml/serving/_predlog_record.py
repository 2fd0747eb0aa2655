"""Prediction records: ids, the journal's line format, and Arrow segments.

JSON is written and read with orjson: a record is encoded on the event loop for every
prediction, where the standard library's encoder cost about a tenth of a request.
"""

from __future__ import annotations

import numbers
import os
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from loopml.core import ValidationError

__all__ = [
    "SEGMENT_SCHEMA",
    "PredictionRecord",
    "decode_line",
    "encode_line",
    "new_prediction_id",
    "records_from_table",
    "segment_bytes",
    "table_from_bytes",
    "table_of",
]


# The last id's millisecond and random part: the next id of that millisecond is larger.
_last_id = [0, 0]
_last_id_lock = threading.Lock()
_FIRST_BITS = 79  # the random part of a millisecond's first id: room above it to count up
_STEP_BITS = 48  # each further id adds 1 to 2**48: ordered, yet not guessable from another


def _forget_last_id() -> None:
    """In a forked child: draw a random part of its own, and a lock no thread holds."""
    global _last_id_lock
    _last_id[0] = _last_id[1] = 0
    _last_id_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_last_id)


def new_prediction_id() -> str:
    """A new 32-character hex id: 48 bits of Unix milliseconds, then an 80-bit random part.

    Unique without coordination and ordered by time to the millisecond, so comparing
    two ids as strings compares their creation times. Within a process they also keep
    their creation order inside one millisecond: a millisecond's first id draws 79
    random bits, each further one adds a random step of 1 to 2**48 (so an id does not
    tell its neighbours' ids, which feedback accepts from anyone who knows them).
    Records stamped alike are then read back in the order they were logged, the same
    order run after run.
    """
    ms = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    with _last_id_lock:
        tail = _last_id[1] + 1 + secrets.randbits(_STEP_BITS)
        # the same millisecond (or the clock stepped back): count up, unless that would
        # overflow 80 bits (2**31 ids in one millisecond first): then the next millisecond
        if ms <= _last_id[0] and tail < 1 << 80:
            ms = _last_id[0]
        else:
            ms, tail = max(ms, _last_id[0] + 1), secrets.randbits(_FIRST_BITS)
        _last_id[0], _last_id[1] = ms, tail
    return f"{ms:012x}{tail:020x}"


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the log keeps it. ``inputs`` and ``output`` must be JSON values."""

    prediction_id: str
    ts_ms: int
    deployment: str
    model_version: str
    inputs: dict[str, Any]
    output: Any
    latency_ms: float
    fallback: bool = False
    shadow: bool = False


SEGMENT_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("ts_ms", pa.int64()),
        ("deployment", pa.string()),
        ("model_version", pa.string()),
        ("inputs", pa.string()),
        ("output", pa.string()),
        ("latency_ms", pa.float64()),
        ("fallback", pa.bool_()),
        ("shadow", pa.bool_()),
    ]
)


# numpy scalars as plain numbers; NaN and infinities become null (JSON has neither)
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_DUMPS_OPTIONS)


# The fixed fields' types, checked at append: orjson would take a UUID or a datetime for
# an id, which Arrow then refuses when the record becomes a segment.
_FIELD_TYPES: dict[str, type] = {
    "prediction_id": str,
    "deployment": str,
    "model_version": str,
    "ts_ms": numbers.Integral,
    "latency_ms": numbers.Real,
}


def _payload(record: PredictionRecord) -> bytes:
    if not isinstance(record, PredictionRecord):
        raise ValidationError(f"expected a PredictionRecord (got {type(record).__name__})")
    for field, kind in _FIELD_TYPES.items():
        value = getattr(record, field)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValidationError(
                f"prediction record field {field!r} must be {kind.__name__} "
                f"(got {type(value).__name__} {value!r})"
            )
    try:
        return _dumps(
            {
                "id": record.prediction_id,
                "ts": int(record.ts_ms),
                "d": record.deployment,
                "mv": record.model_version,
                "in": record.inputs,
                "out": record.output,
                "lat": float(record.latency_ms),
                "fb": bool(record.fallback),
                "sh": bool(record.shadow),
            }
        )
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise ValidationError(
            f"prediction {record.prediction_id!r} is not JSON-serializable: {exc}"
        ) from exc


def encode_line(record: PredictionRecord) -> bytes:
    """The journal line of ``record``: ``<crc32 hex> <json>\\n``; a torn or bitten line
    fails its checksum and is dropped on recovery."""
    payload = _payload(record)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode_line(line: bytes) -> PredictionRecord | None:
    """The record of one journal line (with its newline), or None when it is torn or corrupt."""
    if len(line) < 11 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        data = orjson.loads(payload)
        return PredictionRecord(
            prediction_id=str(data["id"]),
            ts_ms=int(data["ts"]),
            deployment=str(data["d"]),
            model_version=str(data["mv"]),
            inputs=data["in"],
            output=data["out"],
            latency_ms=float(data["lat"]),
            fallback=bool(data["fb"]),
            shadow=bool(data["sh"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


# Rows converted per step when building a table: converting Python values holds the GIL,
# and a server's event loop waits for it (2,000 records in one step stalled it ~20 ms).
_STEP_ROWS = 256


def table_of(records: list[PredictionRecord]) -> pa.Table:
    """``records`` as an Arrow table in :data:`SEGMENT_SCHEMA` (inputs/output as JSON text),
    built a few hundred rows at a time, letting other threads run between steps."""
    batches = []
    for start in range(0, len(records), _STEP_ROWS):
        if start:
            time.sleep(0)  # gives the GIL to a waiting thread (the event loop)
        part = records[start : start + _STEP_ROWS]
        batches.append(
            pa.record_batch(
                [
                    [r.prediction_id for r in part],
                    [r.ts_ms for r in part],
                    [r.deployment for r in part],
                    [r.model_version for r in part],
                    [_dumps(r.inputs).decode() for r in part],
                    [_dumps(r.output).decode() for r in part],
                    [r.latency_ms for r in part],
                    [r.fallback for r in part],
                    [r.shadow for r in part],
                ],
                schema=SEGMENT_SCHEMA,
            )
        )
    return pa.Table.from_batches(batches, schema=SEGMENT_SCHEMA)


def segment_bytes(records: list[PredictionRecord]) -> bytes:
    """An Arrow IPC file (zstd) of ``records``; equal records give equal bytes.

    The file holds one record batch whatever the size (one batch reads several times faster
    than many small ones, and the bytes stay what earlier loopml wrote: recovery recognises
    a journal already sealed into a segment by comparing them)."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, SEGMENT_SCHEMA, options=options) as writer:
        writer.write_table(table_of(records).combine_chunks())
    return bytes(sink.getvalue().to_pybytes())


def table_from_bytes(data: bytes) -> pa.Table:
    """The table of a segment blob."""
    return pa.ipc.open_file(pa.BufferReader(data)).read_all()


def records_from_table(table: pa.Table) -> list[PredictionRecord]:
    """The records of a table in :data:`SEGMENT_SCHEMA`."""
    return [
        PredictionRecord(
            prediction_id=row["prediction_id"],
            ts_ms=row["ts_ms"],
            deployment=row["deployment"],
            model_version=row["model_version"],
            inputs=orjson.loads(row["inputs"]),
            output=orjson.loads(row["output"]),
            latency_ms=row["latency_ms"],
            fallback=row["fallback"],
            shadow=row["shadow"],
        )
        for row in table.to_pylist()
    ]
