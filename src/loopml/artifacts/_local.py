"""Writing blobs into a local folder: fast, and durable before anything can point at them.

A blob is first written to a temp file in the store's ``tmp/`` folder. While it is written,
the kernel is asked to start writing each finished 32 MiB window to disk (Linux
``sync_file_range``), and the writer waits for the window before it, so the disk works
while the next bytes are produced and at most two windows are ever dirty. Where the
filesystem allows it, a large blob skips the page cache altogether (direct writes,
:mod:`loopml.artifacts._direct`): a copy of a file of 4 MiB or more, and every full 4 MiB
write buffer. Committing a set of temp files then:

1. fsyncs every temp file (its bytes and size are on disk),
2. renames each to its final key (``os.replace``: atomic),
3. fsyncs every folder whose entries changed (new names, new sub-folders).

So a blob under its final name is always complete and durable, and once a commit returns
the names are durable too. That is what lets the store trust ``exists`` (a later add of
the same bytes skips the write) and lets a caller record a digest in the database right
after.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import mmap
import os
import secrets
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from loopml.artifacts._direct import (
    ALIGN,
    DIRECT_MIN,
    REFUSED_ERRNOS,
    copy_direct,
    open_direct,
    write_at,
)

__all__ = ["WINDOW", "TempWriter", "commit_temps", "fsync_path"]

WINDOW = 32 << 20
"""Bytes per write-back step; also the unit of a kernel copy."""

_BUFFER = 4 << 20
_START_WRITE = 2  # SYNC_FILE_RANGE_WRITE
_WAIT_ALL = 7  # SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
_O_BINARY = getattr(os, "O_BINARY", 0)
_UNTRIED = -1  # TempWriter._direct before the direct-write descriptor is asked for
_REFUSED = -2  # ... where the filesystem has no direct writes


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` on Linux, else None. Only a hint: fsync is the guarantee."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function: Any = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    found: Callable[[int, int, int, int], int] = function
    return found


def fsync_path(path: Path, *, folder: bool = False) -> None:
    """fsync the file or folder at ``path`` (folders only where the OS can open them)."""
    if folder and os.name != "posix":
        return  # Windows cannot open a folder; NTFS journals its entries itself
    fd = os.open(path, os.O_RDONLY if folder else os.O_WRONLY | _O_BINARY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a folder; their renames are as durable as they get.
        if not folder or exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


class TempWriter:
    """A new temp file in ``directory``, written with paced write-back (see the module doc).

    ``write`` buffers up to 4 MiB; each full buffer goes to the disk with a direct write
    where the filesystem takes them (:mod:`loopml.artifacts._direct`), else through the
    page cache with paced write-back. ``copy_from`` copies another file. ``close`` (or
    leaving the with-block) flushes and closes it; nothing is fsynced here:
    :func:`commit_temps` does that. ``discard`` closes and deletes it.
    """

    def __init__(self, directory: Path, prefix: str) -> None:
        for _ in range(100):
            path = directory / f"{prefix}{secrets.token_hex(8)}.part"
            try:
                # The usual permissions (0o666 less the umask), unlike tempfile.mkstemp.
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
            except FileExistsError:
                continue
            self.path = path
            break
        else:
            raise FileExistsError(f"could not create a unique temporary file in {directory}")
        self.size = 0
        self._buffer = bytearray()
        self._started = 0  # write-back has been started for bytes [0, _started)
        self._range = _sync_file_range()
        self._closed = False
        # Opened at the first full buffer or large copy, so a small blob never pays for it.
        self._direct = _UNTRIED
        self._stage: mmap.mmap | None = None  # the aligned copy of a full buffer

    def __enter__(self) -> TempWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``."""
        view = memoryview(data).cast("B")
        while len(self._buffer) + len(view) >= _BUFFER:
            room = _BUFFER - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            self._flush()
        self._buffer += view

    def copy_from(self, source_fd: int, stop: Callable[[], bool] | None = None) -> bool:
        """Append everything from ``source_fd`` (read from offset 0 on): a large source with
        direct writes where the filesystem takes them, else in the kernel where it can
        (``copy_file_range``). ``stop`` is asked after each window; True ends the copy
        early and this returns False."""
        self._flush()
        if os.fstat(source_fd).st_size >= DIRECT_MIN and self._direct_fd() is not None:
            done = copy_direct(source_fd, self._direct, self._fd, self.size, stop)
            if done is not None:
                self.size += done[0]
                self._started = self.size  # nothing of it is dirty: pacing starts after it
                return done[1]
            self._refuse_direct()
        offset = 0
        kernel = hasattr(os, "copy_file_range")
        while True:
            if kernel:
                try:
                    count = os.copy_file_range(source_fd, self._fd, WINDOW, offset, self.size)
                except OSError:
                    if offset:  # it worked before, so this is a real failure
                        raise
                    kernel = False  # not across these files or filesystems: copy through here
                    continue
                self.size += count
                self._pace()
            else:
                chunk = os.pread(source_fd, WINDOW, offset)
                count = len(chunk)
                self._write_plain(memoryview(chunk))
            if not count:
                return True
            offset += count
            if stop is not None and stop():
                return False

    def close(self) -> None:
        """Write what is buffered and close the file (not fsynced: see :func:`commit_temps`)."""
        if self._closed:
            return
        try:
            self._flush()
        finally:
            self._close_fds()

    def discard(self) -> None:
        """Close and delete the temp file."""
        try:
            if not self._closed:
                self._close_fds()
        finally:
            self.path.unlink(missing_ok=True)

    def _close_fds(self) -> None:
        self._closed = True
        self._stage = None
        try:
            if self._direct >= 0:
                os.close(self._direct)
        finally:
            os.close(self._fd)

    def _direct_fd(self) -> int | None:
        """The direct-write descriptor while the file's end is aligned; None where the
        filesystem has no direct writes or an unaligned piece was written."""
        if self._direct == _UNTRIED:
            found = open_direct(self.path)
            self._direct = _REFUSED if found is None else found
        return self._direct if self._direct >= 0 and self.size % ALIGN == 0 else None

    def _refuse_direct(self) -> None:
        if self._direct >= 0:
            os.close(self._direct)
        self._direct = _REFUSED

    def _flush(self) -> None:
        if not self._buffer:
            return
        view = memoryview(self._buffer)
        if len(view) == _BUFFER and self._direct_fd() is not None:
            if self._stage is None:
                self._stage = mmap.mmap(-1, _BUFFER)  # page-aligned, as direct writes need
            self._stage[:] = view
            try:
                write_at(self._direct, memoryview(self._stage), self.size, self._fd)
            except OSError as exc:
                if exc.errno not in REFUSED_ERRNOS:
                    raise
                self._refuse_direct()
                self._write_plain(view)
            else:
                self.size += len(view)
                self._started = self.size
        else:
            self._write_plain(view)
        self._buffer = bytearray()

    def _write_plain(self, view: memoryview) -> None:
        write_at(self._fd, view, self.size)
        self.size += len(view)
        self._pace()

    def _pace(self) -> None:
        # Start write-back of each full window and wait for the one before it: the disk
        # writes window n while window n+1 is produced, and dirty pages stay bounded.
        if self._range is None:
            return
        while self.size - self._started >= WINDOW:
            self._range(self._fd, self._started, WINDOW, _START_WRITE)
            if self._started:
                self._range(self._fd, self._started - WINDOW, WINDOW, _WAIT_ALL)
            self._started += WINDOW


def _ensure_folder(folder: Path, known: set[Path], changed: set[Path]) -> None:
    """Create ``folder`` and missing parents; a parent whose entries changed goes to ``changed``."""
    if folder in known:
        return
    try:
        folder.mkdir()
    except FileExistsError:
        pass
    except FileNotFoundError:
        _ensure_folder(folder.parent, known, changed)
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            changed.add(folder.parent)
    else:
        changed.add(folder.parent)
    known.add(folder)


def commit_temps(pairs: Iterable[tuple[Path, Path]], known_folders: set[Path]) -> None:
    """Make each ``(temp, final)`` durable under its final path: fsync every temp file, rename
    them all, then fsync every folder that changed. A temp file not renamed when this raises
    is deleted. ``known_folders`` caches folders known to exist (updated in place)."""
    pending = list(pairs)
    done = 0
    try:
        for temp, _ in pending:
            fsync_path(temp)
        changed: set[Path] = set()
        for temp, final in pending:
            _ensure_folder(final.parent, known_folders, changed)
            temp.replace(final)  # os.replace: atomic; a blob already there has the same bytes
            changed.add(final.parent)
            done += 1
        for folder in sorted(changed, key=lambda p: len(p.parts), reverse=True):
            fsync_path(folder, folder=True)
    finally:
        for temp, _ in pending[done:]:
            temp.unlink(missing_ok=True)
