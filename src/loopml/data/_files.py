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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import orjson

from loopml.artifacts import ArtifactStore, safe_join, safe_relative_path
from loopml.core import IntegrityError, NotFoundError, ValidationError

__all__ = ["FileSet", "add_files", "checkout_files", "read_manifest"]

PACK_LIMIT = 64 << 20
LARGE_FILE = 1 << 20
MANIFEST_FORMAT = "loopml-files/1"

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileSet:
    """A stored file set: its content digest, manifest blob, file count and total bytes."""

    digest: str
    manifest: str
    file_count: int
    bytes: int


def _walk(root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                files.append((path.relative_to(root).as_posix(), path))
    return sorted(files)


def add_files(root: Path, store: ArtifactStore, progress: Progress | None = None) -> FileSet:
    """Store the file or every file under folder ``root``; return the file set.

    Raises:
        NotFoundError: ``root`` does not exist.
        ValidationError: ``root`` is an empty folder.
    """
    if not root.exists():
        raise NotFoundError(f"{root}: no such file or folder")
    files = _walk(root)
    if not files:
        raise ValidationError(f"{root} holds no files to version")
    entries: list[dict[str, Any]] = []
    pack = bytearray()
    packed: list[dict[str, Any]] = []

    def flush_pack() -> None:
        if packed:
            digest = store.put_bytes(bytes(pack)).digest
            for entry in packed:
                entry["pack"] = digest
            pack.clear()
            packed.clear()

    for relative, path in files:
        size = path.stat().st_size
        if size >= LARGE_FILE:
            info = store.put_file(path)
            entries.append({"path": relative, "digest": info.digest, "size": info.size})
        else:
            data = path.read_bytes()
            if len(pack) + len(data) > PACK_LIMIT:
                flush_pack()
            entry = {
                "path": relative,
                "digest": "blake3:" + blake3.blake3(data).hexdigest(),
                "size": len(data),
                "offset": len(pack),
            }
            pack.extend(data)
            packed.append(entry)
            entries.append(entry)
        if progress is not None:
            progress(size)
    flush_pack()
    lines = blake3.blake3()
    for entry in entries:
        lines.update(f"{entry['path']}\0{entry['digest']}\0{entry['size']}\n".encode())
    manifest = store.put_bytes(
        orjson.dumps({"format": MANIFEST_FORMAT, "files": entries}, option=orjson.OPT_SORT_KEYS)
    )
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
