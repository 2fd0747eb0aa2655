"""Copies of large files with direct writes, and the usual copy where there are none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from loopml.artifacts import ArtifactStore
from loopml.artifacts._direct import ALIGN, DIRECT_MIN, copy_direct, open_direct, write_at
from loopml.artifacts._local import TempWriter

WINDOW = 16 << 20


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """An empty file with a plain and a direct descriptor; skipped where the filesystem
    of the test's temp folder has no direct writes."""
    path = tmp_path / "target.bin"
    plain = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    direct = open_direct(path)
    if direct is None:
        os.close(plain)
        pytest.skip("no direct writes on the filesystem of the test's temp folder")
    yield path, plain, direct
    os.close(direct)
    os.close(plain)


def _source(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_copy_direct_happy_unaligned_tail(tmp_path: Path, target: tuple[Path, int, int]) -> None:
    path, plain, direct = target
    data = _source(tmp_path / "source.bin", 2 * WINDOW + 1234)
    source = os.open(tmp_path / "source.bin", os.O_RDONLY)
    try:
        assert copy_direct(source, direct, plain, 0) == (len(data), True)
    finally:
        os.close(source)
    assert path.read_bytes() == data


def test_copy_direct_happy_after_an_aligned_start(
    tmp_path: Path, target: tuple[Path, int, int]
) -> None:
    path, plain, direct = target
    os.write(plain, b"h" * ALIGN)
    data = _source(tmp_path / "source.bin", WINDOW + ALIGN)  # no unaligned rest
    source = os.open(tmp_path / "source.bin", os.O_RDONLY)
    try:
        assert copy_direct(source, direct, plain, ALIGN) == (len(data), True)
    finally:
        os.close(source)
    assert path.read_bytes() == b"h" * ALIGN + data


def test_copy_direct_happy_stop_ends_after_a_window(
    tmp_path: Path, target: tuple[Path, int, int]
) -> None:
    path, plain, direct = target
    data = _source(tmp_path / "source.bin", 3 * WINDOW)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    source = os.open(tmp_path / "source.bin", os.O_RDONLY)
    try:
        done = copy_direct(source, direct, plain, 0, stop)
    finally:
        os.close(source)
    assert done == (WINDOW, False)
    assert asked == [1]
    assert path.read_bytes() == data[:WINDOW]


def test_write_at_happy_short_direct_write_ends_on_the_plain_descriptor(
    target: tuple[Path, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, plain, direct = target
    data = os.urandom(2 * ALIGN)
    real_pwrite = os.pwrite
    used: list[int] = []

    def first_stops_short(fd: int, buffer: memoryview, offset: int) -> int:
        used.append(fd)
        if len(used) == 1:  # a direct write that stopped off a block boundary
            return real_pwrite(plain, buffer[:1000], offset)
        return real_pwrite(fd, buffer, offset)

    monkeypatch.setattr(os, "pwrite", first_stops_short)
    write_at(direct, memoryview(data), 0, plain)
    assert used == [direct, plain]
    assert path.read_bytes() == data


def test_temp_writer_happy_writes_after_a_direct_copy_append(tmp_path: Path) -> None:
    data = _source(tmp_path / "source.bin", DIRECT_MIN + 77)
    source = os.open(tmp_path / "source.bin", os.O_RDONLY)
    try:
        with TempWriter(tmp_path, ".t-") as out:
            assert out.copy_from(source)
            out.write(b"after")
    finally:
        os.close(source)
    assert out.size == len(data) + 5
    assert out.path.read_bytes() == data + b"after"


def test_put_file_happy_without_direct_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on macOS, which has no O_DIRECT: the copy goes the usual way, with the same result.
    monkeypatch.delattr(os, "O_DIRECT", raising=False)
    source = tmp_path / "big.bin"
    data = _source(source, 2 * DIRECT_MIN + 3)
    assert open_direct(source) is None
    store = ArtifactStore(tmp_path / "store")
    info = store.put_file(source)
    assert info.digest == "blake3:" + blake3.blake3(data).hexdigest()
    assert store.get_bytes(info.digest) == data


def test_temp_writer_happy_pieces_across_full_buffers(tmp_path: Path) -> None:
    # Full 4 MiB buffers go out with direct writes, the unaligned rest through the cache.
    pieces = [os.urandom(size) for size in (1, 3 << 20, (5 << 20) + 7, 123, 9 << 20)]
    with TempWriter(tmp_path, ".t-") as out:
        for piece in pieces:
            out.write(piece)
    assert out.size == sum(len(piece) for piece in pieces)
    assert out.path.read_bytes() == b"".join(pieces)


def test_temp_writer_happy_copy_after_an_unaligned_write(tmp_path: Path) -> None:
    # copy_from flushes the 5 bytes first, so the copy starts at an unaligned offset.
    data = _source(tmp_path / "source.bin", DIRECT_MIN + ALIGN)
    with TempWriter(tmp_path, ".t-") as out:
        out.write(b"12345")
        with open(tmp_path / "source.bin", "rb") as stream:
            assert out.copy_from(stream.fileno())
        out.write(b"!")
    assert out.size == len(data) + 6
    assert out.path.read_bytes() == b"12345" + data + b"!"
