"""The canonical snapshot of a table: one Parquet file plus a content digest.

The digest is blake3 over the Arrow IPC form of the schema (metadata stripped) and
of the rows in fixed batches of :data:`CANONICAL_ROWS`, each copied to fresh,
zero-offset buffers first. So the same rows with the same types get the same
digest whether they came from CSV or Parquet, in one block or many, and a change
of the Parquet writer's version does not change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "CANONICAL_ROWS",
    "CanonicalSnapshot",
    "canonical_schema",
    "canonical_type",
    "write_canonical",
]

CANONICAL_ROWS = 65_536


class CanonicalSnapshot:
    """What :func:`write_canonical` produced."""

    def __init__(self, path: Path, digest: str, row_count: int, schema: pa.Schema) -> None:
        self.path = path
        self.digest = digest
        self.row_count = row_count
        self.schema = schema

    def schema_fields(self) -> list[dict[str, object]]:
        """The schema as JSON-able records: name, Arrow type, nullability."""
        return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in self.schema]


def canonical_type(data_type: pa.DataType) -> pa.DataType:
    """The type a column is stored as: one spelling per logical type.

    pandas 3 hands Arrow ``large_string``, CSV gives ``string``, categoricals arrive
    dictionary-encoded; storing one spelling keeps equal data at one digest.
    """
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return pa.string()
    if pa.types.is_large_binary(data_type) or pa.types.is_binary_view(data_type):
        return pa.binary()
    if pa.types.is_dictionary(data_type):
        return canonical_type(data_type.value_type)
    return data_type


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` without metadata and with :func:`canonical_type` on every field."""
    return pa.schema([pa.field(f.name, canonical_type(f.type), f.nullable) for f in schema])


def _fresh(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    # Concatenating with an empty array copies into new zero-offset buffers, so the IPC
    # bytes depend on the values only, not on how the source sliced them.
    columns = [
        pa.concat_arrays([column, pa.array([], type=column.type)]) for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def write_canonical(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], path: Path
) -> CanonicalSnapshot:
    """Write ``batches`` to Parquet at ``path`` and compute their content digest.

    Raises whatever the batches raise (a source's ValidationError, say); the caller
    removes ``path`` then.
    """
    clean = canonical_schema(schema)
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update(clean.serialize())
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(path, clean, compression="zstd") as writer:

        def emit(batch: pa.RecordBatch) -> None:
            nonlocal rows
            fixed = _fresh(batch, clean)
            hasher.update(fixed.serialize())
            writer.write_batch(fixed, row_group_size=1 << 20)
            rows += fixed.num_rows

        for batch in batches:
            if batch.num_rows == 0:
                continue
            if batch.schema != clean:
                batch = pa.RecordBatch.from_arrays(
                    [c.cast(f.type) for c, f in zip(batch.columns, clean, strict=True)],
                    schema=clean,
                )
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= CANONICAL_ROWS:
                table = pa.Table.from_batches(pending, schema=clean).combine_chunks()
                start = 0
                while table.num_rows - start >= CANONICAL_ROWS:
                    emit(table.slice(start, CANONICAL_ROWS).to_batches()[0])
                    start += CANONICAL_ROWS
                rest = table.slice(start)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
        if pending_rows:
            table = pa.Table.from_batches(pending, schema=clean).combine_chunks()
            emit(table.to_batches()[0])
    return CanonicalSnapshot(path, "blake3:" + hasher.hexdigest(), rows, clean)
