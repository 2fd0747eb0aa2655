"""Reading sources as a stream of Arrow record batches, so memory stays bounded.

CSV and JSON lines stream through Arrow's block readers, Parquet by row group, a
SQL query in chunks through SQLAlchemy, a DataFrame as it is. Every failure a user
can cause (malformed file, wrong encoding, empty file, SQL error) becomes one
ValidationError naming the source and what was wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from loopml.core import NotFoundError, ValidationError

__all__ = ["FORMATS", "Source", "open_source"]

FORMATS = ("csv", "parquet", "jsonl")
BLOCK_BYTES = 32 << 20  # CSV/JSON block: bounds memory per batch
_SQL_CHUNK_ROWS = 100_000


class _CountingFile:
    """A binary file that reports the bytes read, so a streaming reader shows progress."""

    def __init__(self, path: Path, progress: Callable[[int], None]) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._progress = progress
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._progress(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._file.close()
        self.closed = True


@dataclass
class Source:
    """An open source: its schema, its batches (read once), and how to describe it."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    description: dict[str, Any] = field(default_factory=dict)


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValidationError(f"format {fmt!r} is not supported; expected one of {FORMATS}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    raise ValidationError(
        f"cannot tell the format of {str(path)!r} from its name; expected .csv, .tsv, "
        ".parquet, .jsonl or .ndjson, or pass format="
    )


def _explain(path: Path, exc: Exception) -> ValidationError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    if "empty" in lowered:
        return ValidationError(f"{path}: the file is empty (expected a header and rows)")
    if "utf8" in lowered or "utf-8" in lowered or "decode" in lowered:
        return ValidationError(
            f"{path}: text is not valid UTF-8 ({message}); pass the file's encoding, "
            "e.g. --encoding latin-1"
        )
    return ValidationError(f"{path}: {message}")


def _guarded(
    path: Path, batches: Iterator[pa.RecordBatch], stream: Any = None
) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, ValueError) as exc:
        raise _explain(path, exc) from exc
    finally:
        if isinstance(stream, _CountingFile):
            stream.close()


def _reader_batches(reader: Any) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _open_file(
    path: Path,
    fmt: str,
    encoding: str,
    delimiter: str | None,
    progress: Callable[[int], None] | None,
) -> Source:
    description: dict[str, Any] = {"type": fmt, "uri": str(path.resolve())}
    stream: Any = path if progress is None else _CountingFile(path, progress)
    try:
        if fmt == "parquet":
            if progress is not None:  # read by row group, not as a stream: count it up front
                stream.close()
                progress(path.stat().st_size)
            parquet = pq.ParquetFile(path)
            return Source(
                parquet.schema_arrow,
                _guarded(path, parquet.iter_batches(batch_size=65_536)),
                description,
            )
        if fmt == "csv":
            sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, encoding=encoding),
                parse_options=pcsv.ParseOptions(delimiter=sep),
            )
            description.update(encoding=encoding, delimiter=sep)
            # Arrow infers bytes that are not valid text as binary rather than failing.
            binary = [f.name for f in reader.schema if pa.types.is_binary(f.type)]
            if binary:
                if isinstance(stream, _CountingFile):
                    stream.close()
                raise ValidationError(
                    f"{path}: column(s) {', '.join(binary)} hold text that is not valid "
                    f"{encoding.upper()}; pass the file's encoding, e.g. --encoding latin-1"
                )
        else:
            reader = pjson.open_json(stream, read_options=pjson.ReadOptions(block_size=BLOCK_BYTES))
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: no such file") from exc
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(stream, _CountingFile):
            stream.close()
        raise _explain(path, exc) from exc
    return Source(reader.schema, _guarded(path, _reader_batches(reader), stream), description)


def _sql_source(query: str, url: str) -> Source:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        connection = engine.connect()
        chunks = pd.read_sql_query(sa.text(query), connection, chunksize=_SQL_CHUNK_ROWS)
        first = next(chunks, None)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        with contextlib.suppress(Exception):
            connection.close()
        engine.dispose()
        raise ValidationError(
            f"SQL query failed on {engine.url!r}: {exc.__cause__ or exc}"
        ) from exc
    if first is None:
        first = pd.DataFrame()
    schema = pa.Schema.from_pandas(first, preserve_index=False)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from pa.Table.from_pandas(first, schema=schema, preserve_index=False).to_batches()
            for frame in chunks:
                try:
                    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise ValidationError(
                        f"SQL query on {engine.url!r}: a later chunk does not match the "
                        f"types of the first ({exc})"
                    ) from exc
                yield from table.to_batches()
        finally:
            with contextlib.suppress(Exception):
                connection.close()
            engine.dispose()

    description = {
        "type": "sql",
        "uri": engine.url.render_as_string(hide_password=True),
        "query": query,
    }
    return Source(schema, batches(), description)


def open_source(
    source: str | Path | pd.DataFrame | pa.Table,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    sql: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Source:
    """Open ``source`` for streaming.

    Args:
        source: a path (CSV, TSV, Parquet, JSON lines), a DataFrame, an Arrow table,
            or a SQLAlchemy URL when ``sql`` is given.
        format: ``"csv"``, ``"parquet"`` or ``"jsonl"``; guessed from the name if None.
        encoding: text encoding of CSV files.
        delimiter: CSV field separator (``,`` by default, tab for ``.tsv``).
        sql: a query to run against the database at URL ``source``.
        progress: called with the number of bytes read from a file, as it is read.

    Raises:
        NotFoundError: the file does not exist.
        ValidationError: the format, the content or the query is wrong.
    """
    if sql is not None:
        return _sql_source(sql, str(source))
    if isinstance(source, pd.DataFrame):
        table = pa.Table.from_pandas(source, preserve_index=False)
        return Source(table.schema, iter(table.to_batches()), {"type": "dataframe"})
    if isinstance(source, pa.Table):
        return Source(source.schema, iter(source.to_batches()), {"type": "arrow"})
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValidationError(
            f"{path} is a folder; ingest takes one file (use `data add` for folders)"
        )
    if path.stat().st_size == 0:
        raise ValidationError(f"{path}: the file is empty (expected a header and rows)")
    return _open_file(path, _format_of(path, format), encoding, delimiter, progress)
