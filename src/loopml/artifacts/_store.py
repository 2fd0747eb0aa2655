"""The content-addressed blob store: bytes in, ``blake3:<hex>`` digest out, checked on read."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from loopml.artifacts._backends import LocalBackend, create_temp, open_backend
from loopml.artifacts._digest import (
    BlobInfo,
    copy_hashing,
    digest_of,
    integrity_error,
    new_hasher,
    parse_digest,
)
from loopml.artifacts._local import TempWriter
from loopml.artifacts._reader import VerifyingReader
from loopml.core import BackendError, NotFoundError, ValidationError

__all__ = ["ArtifactStore"]

_PREFIX = "blake3:"
_READ_BUFFER = 1024 * 1024
_HASH_ALONGSIDE = 16 << 20  # from this size on, hash in a thread while the kernel copies


def _hash_path(path: str, size: int) -> str:
    """blake3 of the file at ``path`` (``size`` bytes), on all cores through mmap."""
    hasher = new_hasher()
    if size:
        hasher.update_mmap(path)
    return str(hasher.hexdigest())


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
        self._local = self._backend if isinstance(self._backend, LocalBackend) else None
        self._batch_state = threading.local()

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

    def _pending(self) -> dict[str, Path] | None:
        """This thread's blobs waiting for the end of a :meth:`batch`, by key; None outside."""
        pending: dict[str, Path] | None = getattr(self._batch_state, "pending", None)
        return pending

    def _known(self, hex_digest: str) -> bool:
        key = _key(hex_digest)
        pending = self._pending()
        return (pending is not None and key in pending) or self._backend.exists(key)

    def _keep(self, local: LocalBackend, temp: Path, hex_digest: str) -> None:
        """Store the finished temp file under its digest: at once, or at the end of the batch."""
        key = _key(hex_digest)
        pending = self._pending()
        if (pending is not None and key in pending) or local.exists(key):
            temp.unlink(missing_ok=True)  # equal bytes are stored (or will be) already
        elif pending is not None:
            pending[key] = temp
        else:
            local.commit_files([(temp, key)])

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Commit the blobs this thread puts inside the block together, when it ends.

        Every put still returns its digest at once, but a new blob is stored (visible to
        :meth:`exists` and the readers) only when the block ends: then all the new blobs'
        bytes are fsynced, renamed into place and their folders fsynced, once for the set
        instead of once per blob. So when the block exits without error, everything put in
        it is stored durably: record the digests (in a database, a manifest) after the
        block, not inside it. When the block raises, the blobs not yet stored are deleted.
        Other threads' puts are not affected; a nested block commits with the outermost.
        A remote (fsspec) store writes each blob at once, as outside a batch.

        Example::

            with store.batch():
                infos = [store.put_file(path) for path in paths]
            record(infos)  # every blob is on disk now

        Raises:
            BackendError: the commit at the end fails (no blob of the batch is left
                partial: each is complete under its final name or absent).
        """
        local = self._local
        if local is None or self._pending() is not None:
            yield
            return
        pending: dict[str, Path] = {}
        self._batch_state.pending = pending
        try:
            yield
        except BaseException:
            self._batch_state.pending = None
            for temp in pending.values():
                temp.unlink(missing_ok=True)
            raise
        self._batch_state.pending = None
        with self._errors(f"commit {len(pending)} blobs"):
            local.commit_files((temp, key) for key, temp in pending.items())

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
            local = self._local
            if local is None:
                if not self._backend.exists(key):
                    self._backend.write_bytes(key, data)
            elif not self._known(hex_digest):
                with local.new_temp() as out:
                    out.write(data)
                self._keep(local, out.path, hex_digest)
        return info

    def put_chunks(self, chunks: Iterable[bytes | bytearray | memoryview]) -> BlobInfo:
        """Store the bytes of ``chunks`` one after another as one blob; return its info.

        ``chunks`` may be any iterable, a generator too: each chunk is hashed and written
        as it comes, so memory holds one chunk (plus a 4 MiB write buffer) at a time.

        Raises:
            ValidationError: a chunk is not bytes-like.
            BackendError: the write fails.
        """
        hasher = new_hasher()

        def hashed() -> Iterator[bytes | bytearray | memoryview]:
            for chunk in chunks:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise ValidationError(
                        f"put_chunks expects bytes-like chunks (got {type(chunk).__name__})"
                    )
                hasher.update(chunk)
                yield chunk

        local = self._local
        with self._errors("store chunks"):
            if local is not None:
                with local.new_temp() as out:
                    for chunk in hashed():
                        out.write(chunk)
                hex_digest = hasher.hexdigest()
                self._keep(local, out.path, hex_digest)
                return BlobInfo(_PREFIX + hex_digest, out.size)
            stream, temp = create_temp(self._backend.scratch_dir(), ".upload-")
            try:
                with stream:
                    size = 0
                    for chunk in hashed():
                        size += stream.write(chunk)
                hex_digest = hasher.hexdigest()
                key = _key(hex_digest)
                if not self._backend.exists(key):
                    self._backend.commit_file(temp, key)
            finally:
                temp.unlink(missing_ok=True)
        return BlobInfo(_PREFIX + hex_digest, size)

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store the file at ``path``; return its info.

        In a local store the file is hashed on all cores (through mmap) while the kernel
        copies it, and a blob already stored is recognised without copying all of it.

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
            if self._local is not None:
                return self._put_local_file(self._local, source, f"file {os.fspath(path)!r}")
            return self._put_stream(source, f"file {os.fspath(path)!r}")

    def _put_local_file(self, local: LocalBackend, source: BinaryIO, what: str) -> BlobInfo:
        # Hash the source with blake3 on all cores through mmap, in a thread, while the
        # kernel copies it into a temp file (copy_file_range: no bytes through Python) and
        # the disk writes the copy behind it. Once the hash is known, a blob already stored
        # stops the copy. The source's size and modification time, read before hashing and
        # after copying, prove the copy holds the bytes that were hashed; if they moved,
        # the copy itself is hashed, so the digest always describes the stored bytes.
        with self._errors(f"store {what}"):
            fd = source.fileno()
            before = os.fstat(fd)
            if before.st_size < _HASH_ALONGSIDE:  # small: hash first, copy only if new
                hex_digest = _hash_path(source.name, before.st_size)
                if self._known(hex_digest):
                    return BlobInfo(_PREFIX + hex_digest, before.st_size)
            out = local.new_temp()
            try:
                if before.st_size < _HASH_ALONGSIDE:
                    out.copy_from(fd)
                else:
                    hex_digest, copied = self._copy_hashing_alongside(source, out)
                    if not copied:  # the blob is stored already: the rest is not needed
                        out.discard()
                        return BlobInfo(_PREFIX + hex_digest, before.st_size)
                out.close()
                after = os.fstat(fd)
                if (after.st_size, after.st_mtime_ns, out.size) != (
                    before.st_size,
                    before.st_mtime_ns,
                    before.st_size,
                ):
                    hex_digest = _hash_path(str(out.path), out.size)
                self._keep(local, out.path, hex_digest)
            except BaseException:
                out.discard()
                raise
        return BlobInfo(_PREFIX + hex_digest, out.size)

    def _copy_hashing_alongside(self, source: BinaryIO, out: TempWriter) -> tuple[str, bool]:
        """Copy ``source`` into ``out`` while a thread hashes it; return the digest and
        whether the copy ran to the end (False: the blob turned out to be stored already)."""
        size = os.fstat(source.fileno()).st_size
        with ThreadPoolExecutor(1, thread_name_prefix="loopml-hash") as pool:
            hashing = pool.submit(_hash_path, source.name, size)
            asked = False

            def stored_already() -> bool:
                nonlocal asked
                if asked or not hashing.done():
                    return False
                asked = True
                return self._known(hashing.result())

            copied = out.copy_from(source.fileno(), stored_already)
            return hashing.result(), copied

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
        # next to the blobs when local (then committed), in the system temp dir otherwise
        # (then one upload to the final key).
        with self._errors(f"store {what}"):
            local = self._local
            if local is not None:
                with local.new_temp() as writer:
                    hex_digest, size = copy_hashing(source, writer)
                self._keep(local, writer.path, hex_digest)
                return BlobInfo(_PREFIX + hex_digest, size)
            out, temp = create_temp(self._backend.scratch_dir(), ".upload-")
            try:
                with out:
                    hex_digest, size = copy_hashing(source, out)
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
