"""Blob digests: the ``blake3:<hex>`` form, computing it, and checking it.

A digest names a blob by its content, so two equal byte strings always get the
same name and a changed byte is always noticed on read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import blake3

from loopml.core import IntegrityError, ValidationError

__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "Sink",
    "copy_hashing",
    "digest_of",
    "integrity_error",
    "new_hasher",
    "parse_digest",
]

CHUNK_SIZE = 8 * 1024 * 1024
"""Bytes read per step when streaming, so memory stays flat whatever the blob's size."""

_PREFIX = "blake3:"
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}")
_EXPECTED = "'blake3:' followed by 64 lowercase hex characters"


class Sink(Protocol):
    """Where :func:`copy_hashing` writes: a binary file, or anything with ``write(bytes)``."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its digest (``"blake3:<64 hex>"``) and its size in bytes."""

    digest: str
    size: int


def parse_digest(digest: object) -> str:
    """Return the hex part of ``digest``.

    Raises:
        ValidationError: ``digest`` is not a str of the form ``blake3:<64 lowercase hex>``.
    """
    if isinstance(digest, str) and _DIGEST_RE.fullmatch(digest):
        return digest[len(_PREFIX) :]
    shown = repr(digest)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    raise ValidationError(f"digest must be {_EXPECTED} (got {shown})")


def new_hasher() -> blake3.blake3:
    """A fresh blake3 hasher that may use several threads on large updates."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The hex blake3 digest of ``data`` (without the ``blake3:`` prefix)."""
    return new_hasher().update(data).hexdigest()


def copy_hashing(src: BinaryIO, dst: Sink | None) -> tuple[str, int]:
    """Read ``src`` to its end in chunks, writing each chunk to ``dst`` when given.

    Returns the hex digest of everything read and its length in bytes.

    Raises:
        ValidationError: ``src`` yields something other than bytes (a text stream).
    """
    hasher = new_hasher()
    size = 0
    while True:
        chunk = src.read(CHUNK_SIZE)
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise ValidationError(
                f"stream must be a binary file object whose read() returns bytes "
                f"(got {type(chunk).__name__} from {type(src).__name__}.read)"
            )
        if not chunk:
            return hasher.hexdigest(), size
        hasher.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)


def integrity_error(expected_hex: str, found_hex: str, location: str) -> IntegrityError:
    """The error for a blob whose bytes no longer hash to the digest it is stored under."""
    return IntegrityError(
        f"blob {_PREFIX}{expected_hex} at {location} is corrupt: its bytes hash to "
        f"{_PREFIX}{found_hex}, expected {_PREFIX}{expected_hex}"
    )
