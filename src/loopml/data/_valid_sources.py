"""What validation reads: a DataFrame, a pyarrow Table or a Parquet file, in batches.

Column checks see the data one pandas batch at a time, so a Parquet file of any
size is validated in bounded memory. Checks over the whole data that batches
cannot answer alone (uniqueness) run on DuckDB for Arrow data and on pandas for
a DataFrame, which is in memory already and may hold mixed-type object columns
DuckDB cannot scan.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core import NotFoundError, ValidationError
from loopml.data._report import MAX_EXAMPLES, jsonable

__all__ = ["Duplicates", "ValidationSource", "open_validation_source"]

# (rows that share their key with another row, distinct keys so shared, first example keys:
# in key order for Arrow data, in order of appearance for a DataFrame)
Duplicates = tuple[int, int, list[Any]]
_NULLABLE_ARROW = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _to_pandas(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    # Integers and booleans become pandas' nullable dtypes: the default turns an
    # int column holding a null into float64 and a bool column into object, which
    # would fail a type check the data itself passes.
    return batch.to_pandas(types_mapper=_NULLABLE_ARROW.get)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ValidationSource(abc.ABC):
    """Data to validate: its columns, row count, batches and duplicate keys."""

    label: str

    @property
    @abc.abstractmethod
    def columns(self) -> list[str]:
        """Column names in data order."""

    @property
    @abc.abstractmethod
    def num_rows(self) -> int:
        """Rows in the whole data."""

    @abc.abstractmethod
    def batches(self, columns: Sequence[str] | None, batch_size: int) -> Iterator[pd.DataFrame]:
        """The data as pandas frames of at most ``batch_size`` rows with a 0-based index;
        only ``columns`` (every column when None)."""

    @abc.abstractmethod
    def duplicates(self, key: Sequence[str]) -> Duplicates:
        """Rows whose ``key`` (no null in it) another row shares, over the whole data."""


class _FrameSource(ValidationSource):
    def __init__(self, frame: pd.DataFrame) -> None:
        # Expectations name columns by string; a frame labelled 0, 1, ... is read as "0", "1".
        self.frame = (
            frame if all(isinstance(c, str) for c in frame.columns) else frame.rename(columns=str)
        )
        self.label = "DataFrame"

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def batches(self, columns: Sequence[str] | None, batch_size: int) -> Iterator[pd.DataFrame]:
        frame = self.frame if columns is None else self.frame[list(columns)]
        for start in range(0, len(frame), batch_size):
            yield frame.iloc[start : start + batch_size].reset_index(drop=True)

    def duplicates(self, key: Sequence[str]) -> Duplicates:
        keys = self.frame[list(key)]
        keys = keys[keys.notna().all(axis=1)]
        shared = keys[keys.duplicated(keep=False)]
        distinct = shared.drop_duplicates()
        examples = [
            jsonable(row[0] if len(key) == 1 else list(row))
            for row in distinct.head(MAX_EXAMPLES).itertuples(index=False)
        ]
        return len(shared), len(distinct), examples


class _DuckSource(ValidationSource):
    """Arrow-backed data: uniqueness as one DuckDB GROUP BY over the whole data."""

    @abc.abstractmethod
    def _relation(self, con: duckdb.DuckDBPyConnection) -> str:
        """The SQL relation to read, registering data on ``con`` when needed."""

    def duplicates(self, key: Sequence[str]) -> Duplicates:
        cols = ", ".join(_quote(c) for c in key)
        not_null = " AND ".join(f"{_quote(c)} IS NOT NULL" for c in key)
        with duckdb.connect() as con:
            relation = self._relation(con)
            query = (
                f"WITH shared AS (SELECT {cols}, count(*) AS __n FROM {relation} "
                f"WHERE {not_null} GROUP BY ALL HAVING count(*) > 1) "
                f"SELECT {cols}, sum(__n) OVER () AS __rows, count(*) OVER () AS __keys "
                f"FROM shared ORDER BY {cols} LIMIT {MAX_EXAMPLES}"
            )
            rows = con.sql(query).to_arrow_table().to_pylist()
        if not rows:
            return 0, 0, []
        examples = [jsonable(r[key[0]] if len(key) == 1 else [r[c] for c in key]) for r in rows]
        return int(rows[0]["__rows"]), int(rows[0]["__keys"]), examples


class _TableSource(_DuckSource):
    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.label = "pyarrow Table"

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def batches(self, columns: Sequence[str] | None, batch_size: int) -> Iterator[pd.DataFrame]:
        table = self.table if columns is None else self.table.select(list(columns))
        for batch in table.to_batches(max_chunksize=batch_size):
            yield _to_pandas(batch)

    def _relation(self, con: duckdb.DuckDBPyConnection) -> str:
        con.register("__loopml_data", self.table)
        return "__loopml_data"


class _ParquetSource(_DuckSource):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        try:
            with pq.ParquetFile(path) as parquet:
                self.schema = parquet.schema_arrow
                self.rows = int(parquet.metadata.num_rows)
        except (OSError, pa.ArrowException) as exc:
            raise ValidationError(f"{path}: not a readable Parquet file: {exc}") from exc

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def num_rows(self) -> int:
        return self.rows

    def batches(self, columns: Sequence[str] | None, batch_size: int) -> Iterator[pd.DataFrame]:
        wanted = None if columns is None else list(columns)
        with pq.ParquetFile(self.path) as parquet:
            for batch in parquet.iter_batches(batch_size=batch_size, columns=wanted):
                yield _to_pandas(batch)

    def _relation(self, con: duckdb.DuckDBPyConnection) -> str:
        # Quoted as a SQL string literal, so the query needs no bound parameters.
        return "read_parquet('" + str(self.path).replace("'", "''") + "')"


def open_validation_source(data: object) -> ValidationSource:
    """Wrap ``data``: a pandas DataFrame, a pyarrow Table, or a path to a Parquet file.

    Raises:
        NotFoundError: the path does not exist.
        ValidationError: ``data`` is of another type, or the file is not Parquet.
    """
    if isinstance(data, pd.DataFrame):
        return _FrameSource(data)
    if isinstance(data, pa.Table):
        return _TableSource(data)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise NotFoundError(f"{path}: no such Parquet file to validate")
        return _ParquetSource(path)
    raise ValidationError(
        "data to validate must be a pandas DataFrame, a pyarrow Table or a path to a "
        f"Parquet file; got {type(data).__name__}"
    )
