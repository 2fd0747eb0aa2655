"""Batch scoring: a registered model version over a CSV, JSONL or Parquet file, in chunks.

The reference is resolved once (``churn@champion`` becomes ``churn@4``), so an alias move
during a long job does not mix versions. Chunks are scored in this process or, with the
``process`` or ``ray`` executor, as tasks that load the model by its pinned reference
through the registry (digest-checked), once per worker. Results are written in input
order to a temporary file beside the output, renamed over it at the end.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.registry import ModelRegistry

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BatchResult", "predict_file"]

Progress = Callable[[int, int | None], None]
INPUT_SUFFIXES = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# (db url, artifacts url, pinned ref) -> model: each worker process loads a model once
_MODELS: dict[tuple[str, str, str], Any] = {}


@dataclass(frozen=True)
class BatchResult:
    """What :func:`predict_file` wrote."""

    rows: int
    model_version: str  # the pinned reference every row was scored with
    seconds: float
    chunks: int
    output: Path


def _model(settings: Settings, ref: str) -> Any:
    key = (settings.db_url, settings.artifacts_url, ref)
    if key not in _MODELS:
        with ModelRegistry(settings, create_store=False) as registry:
            _MODELS[key] = registry.load(ref)
    return _MODELS[key]


def score_chunk(
    settings: Settings, ref: str, features: pd.DataFrame, classes: list[Any] | None
) -> pd.DataFrame:
    """The prediction columns for one chunk (runs where the executor puts it)."""
    import pandas as pd

    model = _model(settings, ref)
    out = pd.DataFrame({"prediction": model.predict(features)}, index=features.index)
    if classes is not None and hasattr(model, "predict_proba"):
        proba = model.predict_proba(features)
        for i, cls in enumerate(classes):
            out[f"proba_{cls}"] = proba[:, i]
    return out


def _batches(path: Path, kind: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        elif kind == "csv":
            import pyarrow.csv as pacsv

            yield from pacsv.open_csv(path)
        else:
            import pyarrow.json as pajson

            yield from pajson.open_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{path}: not a readable {kind} file: {exc}") from None


def _chunks(path: Path, kind: str, chunk_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``chunk_rows`` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in _batches(path, kind, chunk_rows):
        while batch.num_rows:
            take = min(batch.num_rows, chunk_rows - count)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


def _total_rows(path: Path, kind: str) -> int | None:
    if kind != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{path}: not a readable parquet file: {exc}") from None


class _Writer:
    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                import pyarrow.csv as pacsv

                self._writer = pacsv.CSVWriter(self.path, table.schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)  # e.g. a column all-null in one chunk
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def predict_file(
    settings: Settings,
    model_ref: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_rows: int = 50_000,
    executor: str = "local",
    max_workers: int | None = None,
    ray_address: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Score every row of ``input_path`` with ``model_ref``; write ``output_path``.

    The output (Parquet or CSV, by its suffix) holds the input columns, ``prediction``,
    ``proba_<class>`` per class for classifiers, and ``model_version`` (the pinned
    reference), one row per input row in input order.

    Args:
        chunk_rows: rows per chunk (and per task on the process and Ray executors).
        executor: ``local`` (this process), ``process`` or ``ray``.
        progress: called with (rows done, total rows or None when unknown) after
            each chunk is written.

    Raises:
        NotFoundError: the model, the version or the input file does not exist.
        ValidationError: an unsupported suffix, an unreadable file, input columns that
            the version's signature needs but the file lacks, or output column clashes.
    """
    import pandas as pd

    from loopml.compute import create_executor

    started = time.monotonic()
    source, target = Path(input_path), Path(output_path)
    if chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be >= 1; got {chunk_rows}")
    in_kind = INPUT_SUFFIXES.get(source.suffix.lower())
    if in_kind is None:
        raise ValidationError(f"{source}: input files are .csv, .jsonl or .parquet")
    out_kind = OUTPUT_SUFFIXES.get(target.suffix.lower())
    if out_kind is None:
        raise ValidationError(f"{target}: output files are .parquet or .csv")
    if not source.is_file():
        raise NotFoundError(f"input file {source} does not exist")
    with ModelRegistry(settings) as registry:
        version = registry.get(model_ref)
    ref = version.ref
    features = [column["name"] for column in version.signature.get("inputs") or []]
    if not features:
        raise ValidationError(f"{ref} records no input signature to check the input against")
    outputs = version.signature.get("outputs") or {}
    classes = outputs.get("classes")
    added = ["prediction", *(f"proba_{c}" for c in classes or []), "model_version"]
    total = _total_rows(source, in_kind)

    pool = create_executor(executor, max_workers=max_workers, ray_address=ray_address)
    window = max(1, pool.max_parallel) * 2
    in_flight: deque[tuple[pa.Table, Future[Any]]] = deque()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    writer = _Writer(partial, out_kind)
    rows = chunks = 0

    def drain_one() -> None:
        nonlocal rows, chunks
        table, future = in_flight.popleft()
        scored: pd.DataFrame = future.result()
        frame = table.to_pandas()
        frame = pd.concat([frame, scored.set_index(frame.index)], axis=1)
        frame["model_version"] = ref
        writer.write(pa.Table.from_pandas(frame, preserve_index=False))
        rows += table.num_rows
        chunks += 1
        if progress is not None:
            progress(rows, total)

    try:
        for table in _chunks(source, in_kind, chunk_rows):
            missing = [c for c in features if c not in table.column_names]
            if missing:
                raise ValidationError(
                    f"{source}: missing column {', '.join(missing)} that {ref}'s signature "
                    f"needs (it has: {', '.join(table.column_names)})"
                )
            clashes = [c for c in added if c in table.column_names]
            if clashes:
                raise ValidationError(
                    f"{source}: column {', '.join(clashes)} would clash with the output's "
                    "prediction columns; rename it"
                )
            x = table.select(features).to_pandas()
            in_flight.append((table, pool.submit(score_chunk, settings, ref, x, classes)))
            while len(in_flight) >= window:
                drain_one()
        while in_flight:
            drain_one()
        writer.close()
        if rows == 0:
            raise ValidationError(f"{source}: no rows to score")
        partial.replace(target)
    except BaseException:
        for _, future in in_flight:
            future.cancel()
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        pool.close()
    return BatchResult(
        rows=rows,
        model_version=ref,
        seconds=time.monotonic() - started,
        chunks=chunks,
        output=target,
    )
