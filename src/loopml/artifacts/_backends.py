"""Where blob bytes live: a fast local-folder backend and a general fsspec backend.

Both speak in keys relative to the store root (``blobs/blake3/ab/cd/abcd...``) and raise
plain ``OSError``/``FileNotFoundError``; :class:`~loopml.artifacts.ArtifactStore` turns
those into loopml errors. Every write is atomic: a reader never sees a partial blob
under its final key.
"""

from __future__ import annotations

import abc
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from loopml.artifacts._local import TempWriter, commit_temps
from loopml.core import BackendError, ValidationError

__all__ = ["Backend", "FsspecBackend", "LocalBackend", "create_temp", "open_backend"]

_EXTRAS = {"s3": "s3", "s3a": "s3"}


def _local(url: str, root: str, storage_options: Mapping[str, Any]) -> LocalBackend:
    if storage_options:
        raise ValidationError(
            f"storage_options apply to remote filesystems only; artifact store {url!r} "
            f"is a local folder (got options {sorted(storage_options)})"
        )
    return LocalBackend(Path(root).absolute())  # a later chdir must not move the store


def create_temp(directory: Path, prefix: str) -> tuple[BinaryIO, Path]:
    """Create and open a new, uniquely named file in ``directory`` for writing.

    Unlike ``tempfile.mkstemp`` the file gets the usual permissions (0o666 less the
    umask), so blobs and downloads are as readable as any other file the user writes.
    """
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(8)}.part"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0))
        except FileExistsError:
            continue
        return open(fd, "wb"), path
    raise FileExistsError(f"could not create a unique temporary file in {directory}")


class Backend(abc.ABC):
    """The few operations the blob store needs from a filesystem."""

    is_local: bool
    """True when temp files written by the store land on the backend's own disk."""

    @abc.abstractmethod
    def location(self, key: str) -> str:
        """The full, human-readable location of ``key``, for messages."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of ``key``; ``FileNotFoundError`` when it is absent."""

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """All bytes of ``key``; ``FileNotFoundError`` when it is absent."""

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A binary stream over ``key``; ``FileNotFoundError`` when it is absent."""

    @abc.abstractmethod
    def write_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` under ``key`` atomically."""

    @abc.abstractmethod
    def scratch_dir(self) -> Path:
        """A local folder for temp files that :meth:`commit_file` can take in."""

    @abc.abstractmethod
    def commit_file(self, temp: Path, key: str) -> None:
        """Store the finished local file ``temp`` under ``key`` atomically."""


class LocalBackend(Backend):
    """Blobs in a local folder, through plain ``open`` and ``os`` calls (no fsspec).

    Writes go through a temp file in ``<root>/tmp`` and :func:`commit_temps`: the bytes are
    fsynced before the rename and the folder after it, so a blob under its final name is
    always complete and durable.
    """

    is_local = True

    def __init__(self, root: Path) -> None:
        self._root = root
        self._scratch: Path | None = None
        self._known_folders: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self._root / key

    def location(self, key: str) -> str:
        return str(self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open_read(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def write_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        with self.new_temp() as out:
            out.write(data)
        self.commit_files([(out.path, key)])

    def scratch_dir(self) -> Path:
        # Same filesystem as the blobs, so the commit's os.replace is atomic.
        if self._scratch is None:
            scratch = self._root / "tmp"
            scratch.mkdir(parents=True, exist_ok=True)
            self._scratch = scratch
        return self._scratch

    def new_temp(self) -> TempWriter:
        """A new temp file in the scratch folder, to be committed with :meth:`commit_files`."""
        return TempWriter(self.scratch_dir(), ".upload-")

    def commit_file(self, temp: Path, key: str) -> None:
        self.commit_files([(temp, key)])

    def commit_files(self, pairs: Iterable[tuple[Path, str]]) -> None:
        """Store each finished temp file under its key, durably (see :func:`commit_temps`)."""
        commit_temps(((temp, self._path(key)) for temp, key in pairs), self._known_folders)


class FsspecBackend(Backend):
    """Blobs on any fsspec filesystem (S3, memory, ...).

    Writes go straight to the final key with one ``pipe_file``/``put_file``: object
    stores make a single PUT visible all at once or not at all, which is what makes
    them atomic. (A filesystem without atomic puts, such as SFTP, could expose a
    partial file while an upload is in flight.)
    """

    is_local = False

    def __init__(self, fs: Any, root: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def location(self, key: str) -> str:
        return str(self._fs.unstrip_protocol(self._path(key)))

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def size(self, key: str) -> int:
        return int(self._fs.size(self._path(key)))

    def read_bytes(self, key: str) -> bytes:
        return bytes(self._fs.cat_file(self._path(key)))

    def open_read(self, key: str) -> BinaryIO:
        stream: BinaryIO = self._fs.open(self._path(key), "rb")
        return stream

    def write_bytes(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self._fs.pipe_file(self._path(key), bytes(data))

    def scratch_dir(self) -> Path:
        return Path(tempfile.gettempdir())

    def commit_file(self, temp: Path, key: str) -> None:
        self._fs.put_file(str(temp), self._path(key))


def open_backend(url: str, storage_options: Mapping[str, Any]) -> Backend:
    """Pick the backend for ``url``: local paths and ``file://`` skip fsspec entirely.

    Raises:
        ValidationError: the url's protocol is unknown, or ``storage_options`` are
            given for a local folder.
        BackendError: the package implementing the protocol is not installed.
    """
    if "://" not in url:
        return _local(url, url, storage_options)
    import fsspec.core  # imported here: it costs ~100 ms and local stores never need it
    from fsspec.implementations.local import LocalFileSystem

    protocol = url.split("://", 1)[0]
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = (
            f"pip install 'loopml[{extra}]'"
            if extra
            else f"install the fsspec {protocol!r} backend"
        )
        raise BackendError(
            f"artifact store {url!r} needs the {protocol!r} filesystem, which is not "
            f"installed; {hint} ({exc})"
        ) from exc
    except ValueError as exc:
        raise ValidationError(
            f"artifact store url {url!r} is not usable: {exc}; expected a local path, "
            f"file://, memory:// or s3:// url"
        ) from exc
    if isinstance(fs, LocalFileSystem):
        return _local(url, root, storage_options)
    return FsspecBackend(fs, root)
