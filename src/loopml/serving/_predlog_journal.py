"""The prediction log's write-ahead journal: one file per process, locked while it lives.

``<home>/predlog/journal-<pid>-<random>.log`` holds one checksummed JSON line per record
(see :func:`encode_line`). The owning process holds an exclusive ``flock`` on it for its
whole life, so a journal whose lock can be taken belongs to a dead process and is
recovered by the next :class:`PredictionLog` that opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from loopml.serving._predlog_record import PredictionRecord, decode_line

__all__ = ["Journal", "orphaned_journals", "read_journal"]

_PATTERN = "journal-*.log"
_PENDING = ".pending-journal-*.log"  # a journal being created: locked, not yet named


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """This process's journal: appended to and fsynced by the writer thread only."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"journal-{os.getpid()}-{secrets.token_hex(4)}.log"
        # Locked before it takes a journal's name: recovery in another process deletes
        # every journal whose lock it can take, and must never take a new one's.
        where = folder / f".pending-{name}"
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            where.rename(folder / name)
            where = folder / name
            _fsync_dir(folder)  # the file's name survives a machine crash
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                where.unlink()
            raise
        self.path = folder / name
        self._fd = fd
        self.size = 0

    def append(self, data: bytes, *, sync: bool) -> None:
        """Write ``data`` at the end (and fsync it when ``sync``). On failure the file is
        cut back to its last good end, so no torn line is followed by good ones."""
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if sync:
                os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def sync(self) -> None:
        os.fsync(self._fd)

    def reset(self) -> None:
        """Empty the journal (its records are in segments now)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.size = 0

    def release(self) -> None:
        """Close the journal and drop its lock, leaving it for recovery."""
        os.close(self._fd)

    def remove(self) -> None:
        """Delete the journal and drop its lock (after a clean close). If the delete fails
        the lock is dropped all the same: the file is left for recovery."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)


def read_journal(fd: int) -> tuple[list[PredictionRecord], int]:
    """The intact records of the journal open at ``fd``, and how many lines were dropped
    (torn by a crash mid-write, or corrupt)."""
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    records: list[PredictionRecord] = []
    dropped = 0
    for line in b"".join(chunks).splitlines(keepends=True):
        record = decode_line(line)
        if record is None:
            dropped += 1
        else:
            records.append(record)
    return records, dropped


@contextlib.contextmanager
def _locked_if_orphaned(path: Path) -> Iterator[int | None]:
    """The fd of ``path`` locked by us when no live process holds it, else None."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        # another recoverer may have finished and deleted it between our open and lock
        try:
            same = os.path.samestat(os.fstat(fd), path.stat())
        except FileNotFoundError:
            same = False
        yield fd if same else None
    finally:
        os.close(fd)


def orphaned_journals(folder: Path, own: Path) -> Iterator[tuple[Path, int]]:
    """Each journal in ``folder`` left by a dead process, locked, as (path, fd).

    The caller turns its records into segments and then deletes the path; the lock is
    released when the iteration moves on.
    """
    if not folder.is_dir():
        return
    for pending in folder.glob(_PENDING):  # a creation cut short: empty, never named
        with _locked_if_orphaned(pending) as fd:
            if fd is not None:
                pending.unlink(missing_ok=True)
    for path in sorted(folder.glob(_PATTERN)):
        if path == own:
            continue
        with _locked_if_orphaned(path) as fd:
            if fd is not None:
                yield path, fd
