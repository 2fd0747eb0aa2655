"""The data catalog: ingest, add, read, diff and split dataset versions.

An ingest streams the source into a canonical Parquet file in the home's scratch
folder, hashes it, validates it, profiles it, stores the file in the artifact store
and only then writes one database transaction. Any failure before that
transaction leaves no version and no rows behind (a failed validation is recorded
as an attempt, on purpose).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core import (
    DatasetVersion,
    ValidationError,
    capture_environment,
)
from loopml.data import _catalog
from loopml.data._files import add_files, checkout_files, scan_files
from loopml.governance import StoreService, append_audit, require

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from loopml.data._diff import ProfileDiff
    from loopml.data._expectations import Expectation
    from loopml.data._profile import DatasetProfile
    from loopml.data._report import ValidationReport
    from loopml.data._splits import SplitSpec

# pandas, pyarrow, DuckDB and pandera cost most of a second to import; methods import
# what they use, so `loopml data add` and the other commands start fast.

__all__ = ["DataCatalog", "IngestResult", "validate_file"]

Progress = Callable[[int], None]
_LINEAGE_TAGS = (
    "loopml.git.commit",
    "loopml.git.dirty",
    "loopml.git.diff_digest",
    "loopml.command",
    "loopml.user",
    "loopml.host",
    "loopml.python",
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What an ingest or add did: the version, whether it is new, and the validation report."""

    version: DatasetVersion
    created: bool
    report: ValidationReport | None = None


class DataCatalog(StoreService):
    """Dataset versions in the store that ``settings`` names.

    ``DataCatalog(settings, create_store=False)`` reads without creating a database.
    """

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        folder = self.settings.home / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="ingest-", suffix=".parquet", dir=folder)
        os.close(handle)
        try:
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def _lineage(self, params: dict[str, Any] | None, extra: dict[str, Any]) -> dict[str, Any]:
        environment = capture_environment(self.settings.project_dir)
        code = {
            key.removeprefix("loopml."): environment[key]
            for key in _LINEAGE_TAGS
            if key in environment
        }
        return {"code": code, "params": params or {}, **extra}

    # -- writing ------------------------------------------------------------------

    def ingest(
        self,
        source: str | Path | pd.DataFrame | pa.Table,
        *,
        name: str,
        expectations: Sequence[Expectation] | str | Path | None = None,
        force: bool = False,
        format: str | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        sql: str | None = None,
        params: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Ingest a table into a new version of ``name`` (or return the identical one).

        Raises:
            ValidationError: bad input, or fail-level checks failed and ``force`` is False
                (the report is recorded as an attempt and attached as ``exc.report``).
            NotFoundError: the source file does not exist.
        """
        from loopml.data._canonical import write_canonical
        from loopml.data._expectations import load_expectations
        from loopml.data._profile import profile
        from loopml.data._sources import open_source
        from loopml.data._validation import validate

        _check_name(name)
        identity = require(self.settings, self.store, "data.ingest")
        checks: Sequence[Expectation] = ()
        expectation_source: dict[str, Any] = {}
        if isinstance(expectations, str | Path):
            checks = load_expectations(Path(expectations))
            expectation_source = {"expectations_file": str(Path(expectations).resolve())}
        elif expectations is not None:
            checks = list(expectations)
        opened = open_source(
            source,
            format=format,
            encoding=encoding,
            delimiter=delimiter,
            sql=sql,
            progress=progress,
        )
        with self._scratch() as scratch:
            snapshot = write_canonical(opened.schema, opened.batches, scratch)
            report = validate(scratch, checks) if checks else None
            report_dict = report.to_dict() if report is not None else None
            if report is not None and not report.passed and not force:
                self.store.transact(
                    lambda c: _catalog.insert_attempt(
                        c,
                        name=name,
                        version_id=None,
                        source=opened.description,
                        passed=False,
                        forced=False,
                        report=report_dict or {},
                    )
                )
                error = ValidationError(
                    f"ingest of {name!r} created no version: {report.summary()}; "
                    "fix the data or pass --force (recorded)"
                )
                error.report = report  # type: ignore[attr-defined]
                raise error
            with self.store.read() as conn:
                existing = _catalog.find_by_digest(conn, name, snapshot.digest)
            if existing is not None:
                return IngestResult(existing, created=False, report=report)
            data_profile = profile(scratch)
            blob = self.artifacts.put_file(scratch)
        values = {
            "digest": snapshot.digest,
            "kind": "table",
            "snapshot": blob.digest,
            "row_count": snapshot.row_count,
            "file_count": 1,
            "bytes": blob.size,
            "schema": snapshot.schema_fields(),
            "source": opened.description,
            "lineage": self._lineage(params, expectation_source),
            "profile": data_profile.to_dict(),
            "validation": report_dict,
            "forced": int(force),
        }

        def commit(conn: Any) -> DatasetVersion:
            version = _catalog.insert_version(conn, name, values)
            if report_dict is not None:
                _catalog.insert_attempt(
                    conn,
                    name=name,
                    version_id=version.id,
                    source=opened.description,
                    passed=bool(report and report.passed),
                    forced=force,
                    report=report_dict,
                )
            append_audit(
                conn,
                actor=identity.name,
                action="data.ingest",
                target=f"dataset:{version.ref}",
                after={"digest": version.digest, "rows": version.row_count, "forced": force},
                reason="forced past failed checks" if force else None,
            )
            return version

        return IngestResult(self.store.transact(commit), created=True, report=report)

    def add(
        self,
        path: str | Path,
        *,
        name: str,
        params: dict[str, Any] | None = None,
        progress: Progress | None = None,
        on_scan: Callable[[int, int], None] | None = None,
    ) -> IngestResult:
        """Version a file or folder as it is (like ``dvc add``); identical content returns
        the existing version.

        ``on_scan(files, bytes)`` is called once the files are listed, before any is
        stored (to size a progress bar); ``progress(bytes)`` as they are stored. Every
        blob is durably stored before the version is recorded.
        """
        _check_name(name)
        identity = require(self.settings, self.store, "data.add")
        root = Path(path)
        found = scan_files(root)
        if on_scan is not None:
            on_scan(len(found), sum(size for _, _, size in found))
        files = add_files(root, self.artifacts, progress, found)
        with self.store.read() as conn:
            existing = _catalog.find_by_digest(conn, name, files.digest)
        if existing is not None:
            return IngestResult(existing, created=False)
        values = {
            "digest": files.digest,
            "kind": "files",
            "snapshot": files.manifest,
            "row_count": None,
            "file_count": files.file_count,
            "bytes": files.bytes,
            "schema": None,
            "source": {"type": "files", "uri": str(root.resolve())},
            "lineage": self._lineage(params, {}),
            "profile": None,
            "validation": None,
            "forced": 0,
        }

        def commit(conn: Any) -> DatasetVersion:
            version = _catalog.insert_version(conn, name, values)
            append_audit(
                conn,
                actor=identity.name,
                action="data.add",
                target=f"dataset:{version.ref}",
                after={"digest": version.digest, "files": files.file_count},
            )
            return version

        return IngestResult(self.store.transact(commit), created=True)

    # -- reading ------------------------------------------------------------------

    def get(self, ref: str) -> DatasetVersion:
        """The version ``NAME@VERSION`` (or the latest for ``NAME``)."""
        with self.store.read() as conn:
            return _catalog.get_version(conn, ref)

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first."""
        with self.store.read() as conn:
            return _catalog.list_versions(conn, name)

    def datasets(self) -> list[tuple[str, int, int | None]]:
        """Every dataset: name, number of versions, newest version number."""
        with self.store.read() as conn:
            return _catalog.list_datasets(conn)

    def profile(self, ref: str) -> DatasetProfile:
        """The stored profile of a table version (no data is read)."""
        from loopml.data._profile import DatasetProfile

        version = self._table(ref)
        with self.store.read() as conn:
            return DatasetProfile.from_dict(_catalog.version_blob(conn, version.id, "profile"))

    def validation_report(self, ref: str) -> ValidationReport | None:
        """The validation report stored with a version, if it was validated."""
        from loopml.data._report import ValidationReport

        version = self.get(ref)
        with self.store.read() as conn:
            raw = _catalog.version_blob(conn, version.id, "validation")
        return None if raw is None else ValidationReport.from_dict(raw)

    def snapshot_path(self, ref: str) -> Path:
        """A local, verified copy of a table version's Parquet snapshot (cached by digest)."""
        version = self._table(ref)
        cache = self.settings.home / "cache" / f"{version.snapshot.split(':')[1]}.parquet"
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            self.artifacts.download(version.snapshot, cache)
        return cache

    def load(self, ref: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A table version as a DataFrame."""
        import pyarrow.parquet as pq

        return pq.read_table(self.snapshot_path(ref), columns=columns).to_pandas()

    def checkout(self, ref: str, dest: str | Path, progress: Progress | None = None) -> list[Path]:
        """Write a files version under folder ``dest``, every file checked against its digest."""
        version = self.get(ref)
        if version.kind != "files":
            raise ValidationError(f"{version.ref} is a table; use load() or snapshot_path()")
        return checkout_files(self.artifacts, version.snapshot, Path(dest), progress)

    def diff(self, ref_a: str, ref_b: str) -> ProfileDiff:
        """Schema, row count and distribution changes from ``ref_a`` to ``ref_b``."""
        from loopml.data._diff import diff_profiles

        return diff_profiles(self.profile(ref_a), self.profile(ref_b))

    def _table(self, ref: str) -> DatasetVersion:
        version = self.get(ref)
        if version.kind != "table":
            raise ValidationError(f"{version.ref} is a set of files, not a table")
        return version

    # -- splits -------------------------------------------------------------------

    def split(self, ref: str, spec: SplitSpec, *, name: str = "default") -> dict[str, Any]:
        """Split a table version, store the definition under ``name``, return row positions.

        Storing the same name again with a different spec raises ValidationError.
        """
        import pyarrow.parquet as pq

        from loopml.data._splits import split_indices

        identity = require(self.settings, self.store, "data.split")
        version = self._table(ref)
        table = pq.read_table(self.snapshot_path(ref))
        spec.check(table.column_names)
        parts = split_indices(table, spec)
        counts = {part: len(rows) for part, rows in parts.items()}

        def commit(conn: Any) -> None:
            _catalog.insert_split(
                conn, version.id, name, spec.to_dict(), spec.fingerprint(), counts
            )
            append_audit(
                conn,
                actor=identity.name,
                action="data.split",
                target=f"dataset:{version.ref}#{name}",
                after={"spec": spec.to_dict(), "counts": counts},
            )

        self.store.transact(commit)
        return parts

    def get_split(self, ref: str, name: str = "default") -> dict[str, Any]:
        """Recompute a stored split: exactly the rows it had when stored."""
        import pyarrow.parquet as pq

        from loopml.data._splits import SplitSpec, split_indices

        version = self._table(ref)
        with self.store.read() as conn:
            stored = _catalog.get_split(conn, version.id, name)
        spec = SplitSpec.from_dict(stored["spec"])
        parts = split_indices(pq.read_table(self.snapshot_path(ref)), spec)
        counts = {part: len(rows) for part, rows in parts.items()}
        if counts != stored["counts"]:  # the data is immutable, so this means a loopml bug
            raise ValidationError(
                f"split {name!r} of {version.ref} no longer reproduces: stored counts "
                f"{stored['counts']}, now {counts}"
            )
        return parts

    def splits(self, ref: str) -> list[dict[str, Any]]:
        """The splits stored for a table version: name, spec, fingerprint and counts."""
        version = self._table(ref)
        with self.store.read() as conn:
            return _catalog.list_splits(conn, version.id)


def validate_file(
    path: str | Path,
    expectations: Sequence[Expectation] | str | Path,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> ValidationReport:
    """Check a file against expectations without creating a version.

    The file is streamed into a temporary canonical Parquet file first, so memory
    stays bounded and the checks see exactly the types an ingest would store.
    """
    from loopml.data._canonical import write_canonical
    from loopml.data._expectations import load_expectations
    from loopml.data._sources import open_source
    from loopml.data._validation import validate

    checks = (
        load_expectations(Path(expectations))
        if isinstance(expectations, str | Path)
        else list(expectations)
    )
    opened = open_source(path, format=format, encoding=encoding, delimiter=delimiter)
    with tempfile.TemporaryDirectory(prefix="loopml-validate-") as folder:
        snapshot = write_canonical(opened.schema, opened.batches, Path(folder) / "data.parquet")
        return validate(snapshot.path, checks)


def _check_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 256
        or "@" in name
        or not name.isprintable()
    ):
        raise ValidationError(
            f"dataset name must be 1-256 printable characters without '@'; got {name!r}"
        )
