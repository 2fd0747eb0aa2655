"""Ingesting tables into versions: dedup by content, lineage, validation gate, bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.data import DataCatalog, SplitSpec, expect

CSV = "id,carrier,delay,when\n1,AA,5.5,2013-01-01\n2,UA,-3.0,2013-01-02\n3,AA,,2013-01-03\n"


@pytest.fixture
def catalog(settings: Settings) -> Iterator[DataCatalog]:
    with DataCatalog(settings) as catalog:
        yield catalog


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "flights.csv"
    path.write_text(CSV)
    return path


def _row_count(catalog: DataCatalog, table: str) -> int:
    with catalog.store.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def test_ingest_csv_creates_version_with_schema_profile_lineage(
    catalog: DataCatalog, csv_file: Path
) -> None:
    result = catalog.ingest(csv_file, name="flights", params={"month": 1})
    version = result.version
    assert result.created and version.ref == "flights@1" and version.kind == "table"
    assert version.row_count == 3
    assert [f["name"] for f in version.schema or []] == ["id", "carrier", "delay", "when"]
    assert version.source["type"] == "csv" and version.source["uri"].endswith("flights.csv")
    assert version.lineage["params"] == {"month": 1}
    assert "python" in version.lineage["code"]
    assert catalog.profile("flights@1").row_count == 3
    assert catalog.load("flights@1")["carrier"].tolist() == ["AA", "UA", "AA"]


def test_identical_data_returns_existing_version_and_stores_nothing(
    catalog: DataCatalog, csv_file: Path, tmp_path: Path
) -> None:
    first = catalog.ingest(csv_file, name="flights").version
    blobs = sorted((catalog.settings.home / "artifacts").rglob("blobs/**/*"))
    table = pq.read_table(catalog.snapshot_path("flights@1"))
    pq.write_table(table, tmp_path / "same.parquet", row_group_size=1)
    again = catalog.ingest(tmp_path / "same.parquet", name="flights")
    assert not again.created and again.version == first
    assert sorted((catalog.settings.home / "artifacts").rglob("blobs/**/*")) == blobs
    assert [v.version for v in catalog.versions("flights")] == [1]


def test_changed_data_makes_version_two(catalog: DataCatalog, csv_file: Path) -> None:
    catalog.ingest(csv_file, name="flights")
    csv_file.write_text(CSV + "4,DL,1.0,2013-01-04\n")
    second = catalog.ingest(csv_file, name="flights").version
    assert second.version == 2 and second.row_count == 4
    assert catalog.get("flights").version == 2
    changes = catalog.diff("flights@1", "flights@2")
    assert changes.row_count == (3, 4)


def test_dataframe_jsonl_and_sql_sources(catalog: DataCatalog, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    from_frame = catalog.ingest(frame, name="xy").version
    frame.to_json(tmp_path / "xy.jsonl", orient="records", lines=True)
    assert not catalog.ingest(tmp_path / "xy.jsonl", name="xy").created
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER, y TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    from_sql = catalog.ingest(f"sqlite:///{db}", name="xy", sql="SELECT x, y FROM t ORDER BY x")
    assert not from_sql.created and from_sql.version.digest == from_frame.digest


def test_failed_fail_level_check_creates_no_version_but_records_attempt(
    catalog: DataCatalog, csv_file: Path
) -> None:
    checks = [expect.not_null("delay"), expect.between("delay", min=0, severity="warn")]
    with pytest.raises(ValidationError, match="ingest of 'flights' created no version") as info:
        catalog.ingest(csv_file, name="flights", expectations=checks)
    assert not info.value.report.passed  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError, match="no dataset named 'flights'"):
        catalog.get("flights")
    assert _row_count(catalog, "validation_attempts") == 1
    assert _row_count(catalog, "dataset_versions") == 0


def test_force_creates_version_and_records_it(catalog: DataCatalog, csv_file: Path) -> None:
    result = catalog.ingest(
        csv_file, name="flights", expectations=[expect.not_null("delay")], force=True
    )
    assert result.version.forced
    report = catalog.validation_report("flights@1")
    assert report is not None and not report.passed


def test_split_is_stored_and_reproduces(catalog: DataCatalog) -> None:
    frame = pd.DataFrame({"x": range(100), "label": [i % 3 for i in range(100)]})
    catalog.ingest(frame, name="t")
    spec = SplitSpec(
        kind="stratified", column="label", ratios=(0.8, 0.2), names=("train", "test"), seed=3
    )
    parts = catalog.split("t@1", spec, name="main")
    again = catalog.get_split("t@1", "main")
    assert {k: v.tolist() for k, v in parts.items()} == {k: v.tolist() for k, v in again.items()}
    assert [s["name"] for s in catalog.splits("t@1")] == ["main"]
    with pytest.raises(ValidationError, match="already exists with another definition"):
        catalog.split("t@1", SplitSpec(seed=4), name="main")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"a,b\n1,2\n3\n", "Expected 2 columns, got 1"),
        ("a,b\n1,caf\xe9\n".encode("latin-1"), "not valid UTF-8"),
    ],
)
def test_sad_bad_csv_names_file_and_leaves_nothing(
    catalog: DataCatalog, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError, match=message) as info:
        catalog.ingest(path, name="bad")
    assert "bad.csv" in str(info.value)
    assert _row_count(catalog, "dataset_versions") == 0
    assert _row_count(catalog, "datasets") == 0
    assert not list((catalog.settings.home / "tmp").glob("*"))


def test_sad_type_mismatch_in_later_rows(
    catalog: DataCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopml.data._sources

    monkeypatch.setattr(loopml.data._sources, "BLOCK_BYTES", 64 << 10)  # many blocks
    path = tmp_path / "late.csv"
    rows = "\n".join(str(i) for i in range(200_000))
    path.write_text("n\n" + rows + "\nnot-a-number\n")
    with pytest.raises(ValidationError, match="late.csv.*not-a-number|late.csv.*conversion"):
        catalog.ingest(path, name="late")
    assert _row_count(catalog, "dataset_versions") == 0


def test_sad_missing_file_sql_error_and_bad_names(catalog: DataCatalog, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nope.csv: no such file"):
        catalog.ingest(tmp_path / "nope.csv", name="x")
    with pytest.raises(ValidationError, match="SQL query failed"):
        catalog.ingest(f"sqlite:///{tmp_path / 'e.db'}", name="x", sql="SELECT * FROM missing")
    with pytest.raises(ValidationError, match="dataset name must be"):
        catalog.ingest(pa.table({"a": [1]}), name="a@b")
    with pytest.raises(ValidationError, match="version must be a positive integer"):
        catalog.get("x@zero")


def test_sql_source_on_postgres(catalog: DataCatalog, postgres_url: str) -> None:
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE src (x integer, y text)"))
        conn.execute(text("INSERT INTO src VALUES (1, 'a'), (2, 'b')"))
    engine.dispose()
    result = catalog.ingest(postgres_url, name="pg", sql="SELECT x, y FROM src ORDER BY x")
    assert result.version.row_count == 2
    assert result.version.source["type"] == "sql"
