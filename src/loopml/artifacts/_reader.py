"""A read stream over a blob that checks the blob's digest when it reaches the end."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

from loopml.artifacts._digest import CHUNK_SIZE, integrity_error, new_hasher
from loopml.core import BackendError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["VerifyingReader"]


class VerifyingReader(io.RawIOBase):
    """Hashes every byte read from ``raw`` and compares the digest once EOF is read.

    The check runs when a read returns no more bytes (``read()``, iteration to the end,
    or a ``read(n)`` past the last byte). A caller that stops early reads bytes that
    were never verified. Not seekable, so the running hash always covers the whole
    prefix read so far.
    """

    def __init__(self, raw: BinaryIO, expected_hex: str, location: str, url: str) -> None:
        super().__init__()
        self._raw = raw
        self._expected = expected_hex
        self._location = location
        self._url = url
        self._hasher = new_hasher()
        self._found: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while chunk := self._read(CHUNK_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def _read(self, size: int) -> bytes:
        if size <= 0:
            return b""
        try:
            chunk = self._raw.read(size)
        except OSError as exc:
            raise BackendError(
                f"artifact store {self._url!r} failed to read blob at {self._location}: {exc}"
            ) from exc
        if chunk:
            self._hasher.update(chunk)
        else:
            self._verify()
        return chunk

    def _verify(self) -> None:
        if self._found is None:
            self._found = self._hasher.hexdigest()
        if self._found != self._expected:
            raise integrity_error(self._expected, self._found, self._location)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()
