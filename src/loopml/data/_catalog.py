"""SQL for datasets, their immutable versions, validation attempts and stored splits."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.core import DatasetVersion, NotFoundError, ValidationError, new_id, now_ms
from loopml.store import schema

__all__ = [
    "find_by_digest",
    "get_version",
    "insert_attempt",
    "insert_version",
    "list_datasets",
    "list_versions",
    "parse_ref",
]

D, V = schema.datasets, schema.dataset_versions


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME`` or ``NAME@VERSION``; the version is None for "latest"."""
    name, _, version = ref.partition("@")
    if not name:
        raise ValidationError(f"dataset reference {ref!r}: expected NAME or NAME@VERSION")
    if not version or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise ValidationError(
            f"dataset reference {ref!r}: version must be a positive integer, got {version!r}"
        )
    return name, int(version)


def _version(row: Any, name: str) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        name=name,
        version=row.version,
        digest=row.digest,
        kind=row.kind,
        snapshot=row.snapshot,
        row_count=row.row_count,
        file_count=row.file_count,
        bytes=row.bytes,
        schema=None if row.schema is None else orjson.loads(row.schema),
        source=orjson.loads(row.source),
        lineage=orjson.loads(row.lineage),
        forced=bool(row.forced),
        created_ms=row.created_ms,
    )


_COLUMNS = [c for c in V.c if c.name not in {"profile", "validation"}]


def get_version(conn: Connection, ref: str) -> DatasetVersion:
    """The version ``ref`` names; NotFoundError naming what is missing."""
    name, number = parse_ref(ref)
    query = select(*_COLUMNS).join(D, D.c.id == V.c.dataset_id).where(D.c.name == name)
    if number is None:
        query = query.order_by(V.c.version.desc()).limit(1)
    else:
        query = query.where(V.c.version == number)
    row = conn.execute(query).first()
    if row is None:
        exists = conn.scalar(select(D.c.id).where(D.c.name == name))
        if exists is None:
            raise NotFoundError(f"no dataset named {name!r}")
        raise NotFoundError(f"dataset {name!r} has no version {number}")
    return _version(row, name)


def version_blob(conn: Connection, version_id: str, column: str) -> Any:
    """The JSON stored in ``profile`` or ``validation`` of a version, or None."""
    raw = conn.scalar(select(V.c[column]).where(V.c.id == version_id))
    return None if raw is None else orjson.loads(raw)


def list_versions(conn: Connection, name: str) -> list[DatasetVersion]:
    """Every version of ``name``, oldest first."""
    query = (
        select(*_COLUMNS)
        .join(D, D.c.id == V.c.dataset_id)
        .where(D.c.name == name)
        .order_by(V.c.version)
    )
    versions = [_version(row, name) for row in conn.execute(query)]
    if not versions:
        raise NotFoundError(f"no dataset named {name!r}")
    return versions


def list_datasets(conn: Connection) -> list[tuple[str, int, int | None]]:
    """Every dataset name with its number of versions and newest version number."""
    query = (
        select(D.c.name, func.count(V.c.id), func.max(V.c.version))
        .select_from(D.outerjoin(V, V.c.dataset_id == D.c.id))
        .group_by(D.c.name)
        .order_by(D.c.name)
    )
    return [(name, count, latest) for name, count, latest in conn.execute(query)]


def find_by_digest(conn: Connection, name: str, digest: str) -> DatasetVersion | None:
    """The version of ``name`` whose content has ``digest``, if any."""
    query = (
        select(*_COLUMNS)
        .join(D, D.c.id == V.c.dataset_id)
        .where(D.c.name == name, V.c.digest == digest)
    )
    row = conn.execute(query).first()
    return None if row is None else _version(row, name)


def insert_version(conn: Connection, name: str, values: dict[str, Any]) -> DatasetVersion:
    """Insert the next version of ``name`` (creating the dataset) in the caller's transaction."""
    dataset_id = conn.scalar(select(D.c.id).where(D.c.name == name))
    if dataset_id is None:
        dataset_id = new_id()
        conn.execute(D.insert().values(id=dataset_id, name=name, created_ms=now_ms()))
    number = (
        conn.scalar(select(func.max(V.c.version)).where(V.c.dataset_id == dataset_id)) or 0
    ) + 1
    row = {
        "id": new_id(),
        "dataset_id": dataset_id,
        "version": number,
        "created_ms": now_ms(),
        **values,
    }
    for key in ("schema", "source", "lineage", "profile", "validation"):
        if row.get(key) is not None:
            row[key] = orjson.dumps(row[key]).decode()
    try:
        conn.execute(V.insert().values(**row))
    except SqlIntegrityError as exc:  # a concurrent ingest took the number; the caller retries
        raise ValidationError(
            f"dataset {name!r}: version {number} was created concurrently"
        ) from exc
    return get_version(conn, f"{name}@{number}")


def insert_attempt(
    conn: Connection,
    *,
    name: str,
    version_id: str | None,
    source: dict[str, Any],
    passed: bool,
    forced: bool,
    report: dict[str, Any],
) -> str:
    """Record one validation of an ingest; return its id."""
    attempt_id = new_id()
    conn.execute(
        schema.validation_attempts.insert().values(
            id=attempt_id,
            dataset_name=name,
            version_id=version_id,
            source=orjson.dumps(source).decode(),
            passed=int(passed),
            forced=int(forced),
            report=orjson.dumps(report).decode(),
            created_ms=now_ms(),
        )
    )
    return attempt_id


def insert_split(
    conn: Connection,
    version_id: str,
    name: str,
    spec: dict[str, Any],
    fingerprint: str,
    counts: dict[str, int],
) -> None:
    """Store a split definition; the same name with another spec is refused."""
    S = schema.dataset_splits
    found = conn.execute(
        select(S.c.fingerprint).where(S.c.version_id == version_id, S.c.name == name)
    ).first()
    if found is not None:
        if found.fingerprint != fingerprint:
            raise ValidationError(
                f"split {name!r} already exists with another definition; choose another name"
            )
        return
    conn.execute(
        S.insert().values(
            id=new_id(),
            version_id=version_id,
            name=name,
            spec=orjson.dumps(spec).decode(),
            fingerprint=fingerprint,
            counts=orjson.dumps(counts).decode(),
            created_ms=now_ms(),
        )
    )


def get_split(conn: Connection, version_id: str, name: str) -> dict[str, Any]:
    """A stored split: spec, fingerprint and counts."""
    for split in list_splits(conn, version_id):
        if split["name"] == name:
            return split
    raise NotFoundError(f"no split named {name!r} stored for this dataset version")


def list_splits(conn: Connection, version_id: str) -> list[dict[str, Any]]:
    """Every split stored for a version."""
    S = schema.dataset_splits
    query = (
        select(S.c.name, S.c.spec, S.c.fingerprint, S.c.counts, S.c.created_ms)
        .where(S.c.version_id == version_id)
        .order_by(S.c.name)
    )
    return [
        {
            "name": n,
            "spec": orjson.loads(sp),
            "fingerprint": f,
            "counts": orjson.loads(c),
            "created_ms": t,
        }
        for n, sp, f, c, t in conn.execute(query)
    ]
