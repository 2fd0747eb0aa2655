"""The content-addressed blob store: bytes in, ``blake3:<hex>`` digest out, checked on read."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from loopml.artifacts._backends import create_temp, open_backend
from loopml.artifacts._digest import (
    BlobInfo,
    copy_hashing,
    digest_of,
    integrity_error,
    new_hasher,
    parse_digest,
)
from loopml.artifacts._reader import VerifyingReader
from loopml.core import BackendError, NotFoundError, ValidationError

__all__ = ["ArtifactStore"]

_PREFIX = "blake3:"
_READ_BUFFER = 1024 * 1024


def _kernel_copy(source: BinaryIO, target: BinaryIO) -> None:
    """Copy ``source`` into ``target`` inside the kernel where it can, else through Python."""
    try:
        while os.copy_file_range(source.fileno(), target.fileno(), 1 << 30):
            pass
    except (AttributeError, OSError):  # no copy_file_range here, or not across these files
        source.seek(0)
        target.seek(0)
        target.truncate()
        shutil.copyfileobj(source, target, 8 << 20)


def _key(hex_digest: str) -> str:
    return f"blobs/blake3/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"


class ArtifactStore:
    """Blobs stored once per content and named by their blake3 digest.

    ``url`` is a local folder (``"/data/artifacts"``, ``"file:///data/artifacts"``) or any
    fsspec url (``"memory://bucket/x"``, ``"s3://bucket/prefix"``; S3 needs
    ``pip install 'loopml[s3]'``). ``storage_options`` go to the fsspec filesystem
    (credentials, endpoint); they are never shown in ``repr`` or messages.

    A blob with digest ``blake3:abcd...`` lives at ``<root>/blobs/blake3/ab/cd/abcd...``.
    Equal bytes are written once. Writes are atomic: a blob is complete under its
    final name or absent. Local folders also hold ``<root>/tmp/`` for uploads in
    progress. Every read verifies the digest.

    Example::

        store = ArtifactStore(tmp_path)
        info = store.put_bytes(b"hello")
        assert store.get_bytes(info.digest) == b"hello"

    Raises (from the constructor):
        ValidationError: the url is empty or its protocol unknown, or ``storage_options``
            are given for a local folder.
        BackendError: the package for the url's protocol is missing (names the extra).

    Every method raises ``ValidationError`` for a digest not of the form
    ``blake3:<64 lowercase hex>``, ``NotFoundError`` for a well-formed digest that is not
    stored, and ``BackendError`` (chaining the ``OSError``) when the storage fails.
    """

    def __init__(
        self, url: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        url_text = os.fspath(url) if isinstance(url, os.PathLike) else url
        if not isinstance(url_text, str) or not url_text:
            raise ValidationError(
                f"artifact store url must be a non-empty path or url (got {url!r})"
            )
        self._url = url_text
        self._backend = open_backend(url_text, storage_options or {})

    @property
    def url(self) -> str:
        """The url or path the store was opened with, as given."""
        return self._url

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    @contextlib.contextmanager
    def _errors(self, action: str, *, not_found: str | None = None) -> Iterator[None]:
        """Turn ``OSError`` into loopml errors; a missing file means ``not_found`` if given."""
        try:
            yield
        except FileNotFoundError as exc:
            if not_found is None:
                raise BackendError(
                    f"artifact store {self._url!r} failed to {action}: {exc}"
                ) from exc
            raise NotFoundError(
                f"blob {not_found} not found in artifact store {self._url!r}"
            ) from exc
        except OSError as exc:
            raise BackendError(f"artifact store {self._url!r} failed to {action}: {exc}") from exc

    def put_bytes(self, data: bytes | bytearray | memoryview) -> BlobInfo:
        """Store ``data`` unless a blob with the same digest exists; return its info.

        Raises:
            ValidationError: ``data`` is not bytes-like.
            BackendError: the write fails.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(
                f"put_bytes expects bytes, bytearray or memoryview (got {type(data).__name__})"
            )
        hex_digest = digest_of(data)
        info = BlobInfo(_PREFIX + hex_digest, memoryview(data).nbytes)
        key = _key(hex_digest)
        with self._errors(f"write blob {info.digest}"):
            if not self._backend.exists(key):
                self._backend.write_bytes(key, data)
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store the file at ``path``, streamed in 8 MiB chunks and hashed as it is read.

        Raises:
            NotFoundError: there is no file at ``path``.
            ValidationError: ``path`` is a directory.
            BackendError: reading the file or writing the blob fails.
        """
        try:
            # Opened outside a with-block so open() errors map apart from the store's own.
            source = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
        except FileNotFoundError as exc:
            raise NotFoundError(f"file {os.fspath(path)!r} to store does not exist") from exc
        except IsADirectoryError as exc:
            raise ValidationError(
                f"put_file expects a regular file (got the directory {os.fspath(path)!r})"
            ) from exc
        except OSError as exc:
            raise BackendError(f"cannot open file {os.fspath(path)!r} to store: {exc}") from exc
        with source:
            if self._backend.is_local:
                return self._put_local_file(source, f"file {os.fspath(path)!r}")
            return self._put_stream(source, f"file {os.fspath(path)!r}")

    def _put_local_file(self, source: BinaryIO, what: str) -> BlobInfo:
        # Fast path for a local store: hash the source with blake3 on all cores through
        # mmap, then let the kernel copy it (copy_file_range: no bytes through Python).
        # The source's size and modification time, read before hashing and after copying,
        # prove the copy holds the bytes that were hashed; if they moved, the copy itself
        # is hashed, so the digest always describes the stored bytes.
        with self._errors(f"store {what}"):
            before = os.fstat(source.fileno())
            hasher = new_hasher()
            if before.st_size:
                hasher.update_mmap(source.name)
            hex_digest = hasher.hexdigest()
            if self._backend.exists(_key(hex_digest)):  # already stored: no copy at all
                return BlobInfo(_PREFIX + hex_digest, before.st_size)
            out, temp = create_temp(self._backend.scratch_dir(), ".upload-")
            try:
                with out:
                    _kernel_copy(source, out)
                    out.flush()
                    os.fsync(out.fileno())
                after = os.fstat(source.fileno())
                size = temp.stat().st_size
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    rehash = new_hasher()
                    if size:
                        rehash.update_mmap(temp)
                    hex_digest = rehash.hexdigest()
                key = _key(hex_digest)
                if not self._backend.exists(key):
                    self._backend.commit_file(temp, key)
            finally:
                temp.unlink(missing_ok=True)
        return BlobInfo(_PREFIX + hex_digest, size)

    def put_stream(self, stream: BinaryIO) -> BlobInfo:
        """Store everything left in the open binary file object ``stream``, read in chunks.

        The stream is read to its end and left open.

        Raises:
            ValidationError: ``stream`` returns text instead of bytes.
            BackendError: reading the stream or writing the blob fails.
        """
        return self._put_stream(stream, f"stream {type(stream).__name__}")

    def _put_stream(self, source: BinaryIO, what: str) -> BlobInfo:
        # The digest is known only at the end, so the bytes go to a temp file first:
        # next to the blobs when local (then os.replace), in the system temp dir otherwise
        # (then one upload to the final key).
        with self._errors(f"store {what}"):
            out, temp = create_temp(self._backend.scratch_dir(), ".upload-")
            try:
                with out:
                    hex_digest, size = copy_hashing(source, out)
                    if self._backend.is_local:
                        out.flush()
                        os.fsync(out.fileno())
                key = _key(hex_digest)
                if not self._backend.exists(key):
                    self._backend.commit_file(temp, key)
            finally:
                temp.unlink(missing_ok=True)
        return BlobInfo(_PREFIX + hex_digest, size)

    def exists(self, digest: str) -> bool:
        """Whether a blob with ``digest`` is stored (its bytes are not checked)."""
        key = _key(parse_digest(digest))
        with self._errors(f"check blob {digest}"):
            return self._backend.exists(key)

    def size(self, digest: str) -> int:
        """Size in bytes of the blob ``digest`` (its bytes are not checked)."""
        key = _key(parse_digest(digest))
        with self._errors(f"stat blob {digest}", not_found=digest):
            return self._backend.size(key)

    def get_bytes(self, digest: str) -> bytes:
        """All bytes of the blob ``digest``, after checking they hash to ``digest``.

        Raises:
            IntegrityError: the stored bytes hash to another digest (names both and
                the blob's location).
        """
        hex_digest = parse_digest(digest)
        key = _key(hex_digest)
        with self._errors(f"read blob {digest}", not_found=digest):
            data = self._backend.read_bytes(key)
        found = digest_of(data)
        if found != hex_digest:
            raise integrity_error(hex_digest, found, self._backend.location(key))
        return data

    def open(self, digest: str) -> BinaryIO:
        """Open the blob ``digest`` as a binary, non-seekable read stream.

        The stream hashes what it reads and raises ``IntegrityError`` when a read reaches
        the end and the digest does not match. A partial read (closing before EOF) is
        not verified; read to the end, or use :meth:`get_bytes`/:meth:`download`, when
        the bytes must be trusted.

        Raises:
            IntegrityError: from a read that reaches EOF, when the bytes do not match.
        """
        hex_digest = parse_digest(digest)
        key = _key(hex_digest)
        with self._errors(f"open blob {digest}", not_found=digest):
            raw = self._backend.open_read(key)
        reader = VerifyingReader(raw, hex_digest, self._backend.location(key), self._url)
        return io.BufferedReader(reader, buffer_size=_READ_BUFFER)

    def download(self, digest: str, dest_path: str | os.PathLike[str]) -> Path:
        """Write the blob ``digest`` to ``dest_path`` and return that path.

        The bytes stream to a temp file beside ``dest_path`` (missing parent folders are
        created), are verified, then replace ``dest_path`` in one ``os.replace``. On any
        failure the temp file is removed and ``dest_path`` is left as it was.

        Raises:
            IntegrityError: the stored bytes do not match ``digest``.
            BackendError: reading the blob or writing ``dest_path`` fails.
        """
        hex_digest = parse_digest(digest)
        key = _key(hex_digest)
        dest = Path(dest_path)
        with self._errors(f"open blob {digest}", not_found=digest):
            source = self._backend.open_read(key)
        with source, self._errors(f"download blob {digest} to {str(dest)!r}"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            out, temp = create_temp(dest.parent, f".{dest.name[:100]}.")  # stay under NAME_MAX
            try:
                with out:
                    found, _ = copy_hashing(source, out)
                    if found != hex_digest:
                        raise integrity_error(hex_digest, found, self._backend.location(key))
                    out.flush()
                    os.fsync(out.fileno())
                temp.replace(dest)  # os.replace: atomic
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return dest
