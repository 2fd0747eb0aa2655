"""Versioning files and folders as they are, the way DVC users do with ``dvc add``.

Files of 1 MiB or more are stored as blobs of their own. Smaller files are packed
into pack blobs of up to 64 MiB, because writing ten thousand tiny files (and
syncing each) costs far more than writing one large one. A manifest records each
file's path, size, digest and where its bytes live; it is stored as a blob too.

The content digest of a file set is blake3 over the sorted ``path, digest, size``
lines, so it does not depend on how files were packed. Packing is deterministic,
so adding the same folder twice writes nothing new: every blob is already there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import orjson

from loopml.artifacts import ArtifactStore, safe_join, safe_relative_path
from loopml.core import BackendError, IntegrityError, NotFoundError, ValidationError

__all__ = ["FileSet", "add_files", "checkout_files", "read_manifest", "scan_files"]

PACK_LIMIT = 64 << 20
LARGE_FILE = 1 << 20
MANIFEST_FORMAT = "loopml-files/1"
_O_BINARY = getattr(os, "O_BINARY", 0)

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileSet:
    """A stored file set: its content digest, manifest blob, file count and total bytes."""

    digest: str
    manifest: str
    file_count: int
    bytes: int


def scan_files(root: Path) -> list[tuple[str, str, int]]:
    """``(relative posix path, path, size)`` of the file ``root`` or of every regular file
    under the folder ``root``, sorted by relative path; symlinks and special files (FIFOs,
    sockets, devices) are skipped.

    Raises:
        NotFoundError: ``root`` does not exist.
        BackendError: a folder cannot be read.
    """
    try:
        status = root.stat()
        if stat.S_ISREG(status.st_mode):
            return [(root.name, str(root), status.st_size)]
        found: list[tuple[str, str, int]] = []
        if stat.S_ISDIR(status.st_mode):
            _scan(str(root), "", found)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{root}: no such file or folder") from exc
    except OSError as exc:
        raise BackendError(f"cannot read {root}: {exc}") from exc
    found.sort()
    return found


def _scan(folder: str, prefix: str, found: list[tuple[str, str, int]]) -> None:
    # os.scandir gives each entry's type without a stat; one stat per file for its size.
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _scan(entry.path, f"{prefix}{entry.name}/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append(
                    (prefix + entry.name, entry.path, entry.stat(follow_symlinks=False).st_size)
                )


def _read_small(path: str, size: int) -> bytes:
    """All bytes of the small file ``path``, expected to be ``size`` long: one read call."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
        try:
            data = os.read(fd, size + 1)
            if len(data) <= size:  # a short read of a regular file is its end
                return data
            parts = [data]  # the file grew since it was listed: read on to its end
            while part := os.read(fd, LARGE_FILE):
                parts.append(part)
            return b"".join(parts)
        finally:
            os.close(fd)
    except FileNotFoundError as exc:
        raise NotFoundError(f"file {path!r} disappeared while it was being versioned") from exc
    except OSError as exc:
        raise BackendError(f"cannot read {path!r}: {exc}") from exc


class _Progress:
    """Reports bytes to ``report`` in steps of at least 4 MiB, so a bar costs little."""

    __slots__ = ("_report", "_waiting")

    def __init__(self, report: Progress | None) -> None:
        self._report = report
        self._waiting = 0

    def __call__(self, size: int) -> None:
        if self._report is not None:
            self._waiting += size
            if self._waiting >= 4 << 20:
                self.flush()

    def flush(self) -> None:
        if self._report is not None and self._waiting:
            self._report(self._waiting)
            self._waiting = 0


def _packs(files: list[tuple[str, str, int]]) -> list[list[tuple[str, str, int]]]:
    """The small files, in order, cut into groups of at most ``PACK_LIMIT`` bytes."""
    groups: list[list[tuple[str, str, int]]] = []
    group: list[tuple[str, str, int]] = []
    filled = 0
    for found in files:
        size = found[2]
        if size >= LARGE_FILE:
            continue
        if group and filled + size > PACK_LIMIT:
            groups.append(group)
            group, filled = [], 0
        group.append(found)
        filled += size
    if group:
        groups.append(group)
    return groups


def add_files(
    root: Path,
    store: ArtifactStore,
    progress: Progress | None = None,
    files: list[tuple[str, str, int]] | None = None,
) -> FileSet:
    """Store the file or every file under folder ``root``; return the file set.

    ``files`` is what :func:`scan_files` returned for ``root``, if the caller scanned it
    already. The blobs are written inside one :meth:`ArtifactStore.batch`, so when this
    returns every one of them is stored durably.

    Raises:
        NotFoundError: ``root`` does not exist.
        ValidationError: ``root`` is an empty folder.
    """
    if files is None:
        files = scan_files(root)
    if not files:
        raise ValidationError(f"{root} holds no files to version")
    advance = _Progress(progress)
    by_path: dict[str, dict[str, Any]] = {}

    def pack_bytes(group: list[tuple[str, str, int]]) -> Iterator[bytes]:
        offset = 0
        for relative, path, size in group:
            data = _read_small(path, size)
            by_path[relative] = {
                "path": relative,
                "digest": "blake3:" + blake3.blake3(data).hexdigest(),
                "size": len(data),
                "offset": offset,
            }
            offset += len(data)
            advance(size)
            yield data

    with store.batch():
        for group in _packs(files):
            digest = store.put_chunks(pack_bytes(group)).digest
            for relative, _, _ in group:
                by_path[relative]["pack"] = digest
        for relative, path, size in files:
            if size >= LARGE_FILE:
                info = store.put_file(path)
                by_path[relative] = {"path": relative, "digest": info.digest, "size": info.size}
                advance(size)
        entries = [by_path[relative] for relative, _, _ in files]
        lines = blake3.blake3()
        for entry in entries:
            lines.update(f"{entry['path']}\0{entry['digest']}\0{entry['size']}\n".encode())
        manifest = store.put_bytes(
            orjson.dumps({"format": MANIFEST_FORMAT, "files": entries}, option=orjson.OPT_SORT_KEYS)
        )
    advance.flush()
    return FileSet(
        digest="blake3:" + lines.hexdigest(),
        manifest=manifest.digest,
        file_count=len(entries),
        bytes=sum(int(e["size"]) for e in entries),
    )


def read_manifest(store: ArtifactStore, manifest: str) -> list[dict[str, Any]]:
    """The file entries of a stored manifest."""
    document = orjson.loads(store.get_bytes(manifest))
    if document.get("format") != MANIFEST_FORMAT:
        raise ValidationError(f"blob {manifest} is not a loopml file manifest")
    files: list[dict[str, Any]] = document["files"]
    return files


def checkout_files(
    store: ArtifactStore, manifest: str, dest: Path, progress: Progress | None = None
) -> list[Path]:
    """Write the files of a stored file set under folder ``dest``; every file is verified.

    Raises:
        IntegrityError: a stored file no longer matches its digest.
    """
    written = []
    packs: dict[str, bytes] = {}
    for entry in read_manifest(store, manifest):
        target = safe_join(dest, safe_relative_path(entry["path"]))
        target.parent.mkdir(parents=True, exist_ok=True)
        if "pack" in entry:
            if entry["pack"] not in packs:
                packs.clear()  # one pack in memory at a time
                packs[entry["pack"]] = store.get_bytes(entry["pack"])
            data = packs[entry["pack"]][entry["offset"] : entry["offset"] + entry["size"]]
            if "blake3:" + blake3.blake3(data).hexdigest() != entry["digest"]:
                raise IntegrityError(f"file {entry['path']!r} does not match {entry['digest']}")
            target.write_bytes(data)
        else:
            store.download(entry["digest"], target)
        written.append(target)
        if progress is not None:
            progress(int(entry["size"]))
    return written
