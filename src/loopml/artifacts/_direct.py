"""Copying a large file into a temp blob with direct writes (``O_DIRECT``), past the page cache.

Why: a copy written through the page cache leaves the kernel a gigabyte of dirty pages for
a 1 GiB file, and the commit's fsync then waits for their write-back, which on the virtual
disk loopml was measured on was slow and erratic (0.7 to 3.3 s for 1 GiB, against 0.43 to
0.56 s for the same bytes written direct; see docs/data.md). A direct
write goes from an aligned buffer to the device, so the copy runs at the disk's speed: the
next window is read from the source while a thread writes the last one. The commit's fsync
is still the guarantee; after direct writes it only has the file's metadata to flush.

Direct writes need the buffer, the file offset and the length aligned to the device's
block. The buffers are ``mmap`` pages; a window's unaligned end (the file's last bytes)
goes through the ordinary descriptor. Where the platform or filesystem has no direct
writes (macOS, some network filesystems, older tmpfs), :func:`open_direct` says so and the
caller copies the usual way.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["ALIGN", "DIRECT_MIN", "REFUSED_ERRNOS", "copy_direct", "open_direct", "write_at"]

ALIGN = 4096
"""Offsets and lengths of direct writes are multiples of this (a page; any block size
up to it divides it)."""

DIRECT_MIN = 4 << 20
"""Sources smaller than this are copied the usual way: their write-back is short anyway."""

_WINDOW = 16 << 20
REFUSED_ERRNOS = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)
"""How a filesystem without direct writes answers an open or a write with ``O_DIRECT``."""


def open_direct(path: os.PathLike[str] | str) -> int | None:
    """A second, direct-write descriptor on the existing file ``path``; None where the
    platform or the filesystem has no direct writes."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError as exc:
        if exc.errno in REFUSED_ERRNOS:
            return None
        raise


def write_at(fd: int, data: memoryview, offset: int, plain_fd: int | None = None) -> None:
    """Write all of ``data`` at ``offset`` of ``fd``.

    A direct write may stop short; if it stops off a block boundary, what is left can no
    longer be written direct, so it goes through ``plain_fd`` (the same file opened
    without ``O_DIRECT``) where one is given.
    """
    while data:
        written = os.pwrite(fd, data, offset)
        if written <= 0:
            raise OSError(errno.EIO, f"write returned {written} at offset {offset}")
        data = data[written:]
        offset += written
        if written % ALIGN and plain_fd is not None:
            fd = plain_fd


def copy_direct(
    source_fd: int,
    direct_fd: int,
    plain_fd: int,
    start: int,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, bool] | None:
    """Copy ``source_fd`` (from its offset 0 on) into the target at offset ``start`` (a
    multiple of :data:`ALIGN`): aligned windows through ``direct_fd``, an unaligned rest
    through ``plain_fd`` (the same file, opened without ``O_DIRECT``).

    ``stop`` is asked after each window; True ends the copy early. Returns the bytes
    copied and whether the copy ran to the source's end, or None when the filesystem
    refused the very first direct write (nothing is written then: copy the usual way).
    """
    # Two buffers: the source is read into one while the thread writes the other. Leaving
    # the executor waits for a write still in flight, so a buffer outlives its write.
    buffers = [memoryview(mmap.mmap(-1, _WINDOW)) for _ in range(2)]
    copied = 0
    aligned = True  # once an unaligned piece is written, the rest goes through plain_fd
    writing: Future[None] | None = None
    turn = 0
    with ThreadPoolExecutor(1, thread_name_prefix="loopml-write") as writer:
        while True:
            view = buffers[turn % 2]  # not the one a write may still be reading from
            turn += 1
            count = os.preadv(source_fd, [view], copied)
            if writing is not None:
                writing.result()  # the other buffer is free again; raises the write's failure
                writing = None
            if not count:
                return copied, True
            head = count - count % ALIGN if aligned else 0
            if head:
                writing = writer.submit(write_at, direct_fd, view[:head], start + copied, plain_fd)
                if not copied:  # the filesystem's verdict on direct writes comes now
                    try:
                        writing.result()
                    except OSError as exc:
                        if exc.errno in REFUSED_ERRNOS:
                            return None
                        raise
                    writing = None
            if head < count:
                if writing is not None:
                    writing.result()
                    writing = None
                write_at(plain_fd, view[head:count], start + copied + head)
                aligned = False
            copied += count
            if stop is not None and stop():
                if writing is not None:
                    writing.result()
                return copied, False
