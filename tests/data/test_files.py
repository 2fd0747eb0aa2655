"""Versioning files and folders as they are, and checking them out again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from loopml.core import IntegrityError, NotFoundError, Settings, ValidationError
from loopml.data import DataCatalog


@pytest.fixture
def catalog(settings: Settings) -> Iterator[DataCatalog]:
    with DataCatalog(settings) as catalog:
        yield catalog


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    for i in range(50):
        (root / "cats" / f"{i}.bin").write_bytes(bytes([i]) * (100 + i))
    (root / "big.bin").write_bytes(b"x" * (2 << 20))  # stored as its own blob
    return root


def test_add_folder_and_checkout_round_trip(
    catalog: DataCatalog, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    result = catalog.add(folder, name="images")
    version = result.version
    assert result.created and version.kind == "files"
    assert version.file_count == 51
    assert version.bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    written = catalog.checkout("images@1", tmp_path / "out")
    assert len(written) == 51
    for path in folder.rglob("*"):
        if path.is_file():
            assert (tmp_path / "out" / path.relative_to(folder)).read_bytes() == path.read_bytes()


def test_add_same_folder_twice_stores_nothing_new(
    catalog: DataCatalog, settings: Settings, folder: Path
) -> None:
    first = catalog.add(folder, name="images").version
    blobs = sorted((settings.home / "artifacts").rglob("blobs/**/*"))
    again = catalog.add(folder, name="images")
    assert not again.created and again.version == first
    assert sorted((settings.home / "artifacts").rglob("blobs/**/*")) == blobs


def test_changed_file_makes_new_version(
    catalog: DataCatalog, settings: Settings, folder: Path
) -> None:
    catalog.add(folder, name="images")
    (folder / "cats" / "0.bin").write_bytes(b"changed")
    assert catalog.add(folder, name="images").version.version == 2


def test_single_file(catalog: DataCatalog, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    version = catalog.add(path, name="m").version
    assert version.file_count == 1 and version.bytes == 7


def test_sad_tampered_pack_is_caught_on_checkout(
    catalog: DataCatalog, settings: Settings, folder: Path, tmp_path: Path
) -> None:
    catalog.add(folder, name="images")
    packs = [
        p
        for p in (settings.home / "artifacts").rglob("blobs/**/*")
        if p.is_file() and 5000 < p.stat().st_size < 10_000
    ]
    assert packs, "expected one pack of the small files"
    data = bytearray(packs[0].read_bytes())
    data[10] ^= 0xFF
    packs[0].write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        catalog.checkout("images@1", tmp_path / "out")


def test_sad_missing_and_empty(catalog: DataCatalog, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file or folder"):
        catalog.add(tmp_path / "nope", name="x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="holds no files"):
        catalog.add(tmp_path / "empty", name="x")


def test_add_reports_scan_then_progress(catalog: DataCatalog, folder: Path) -> None:
    scans: list[tuple[int, int]] = []
    done: list[int] = []
    version = catalog.add(
        folder, name="images", progress=done.append, on_scan=lambda *a: scans.append(a)
    ).version
    assert scans == [(51, version.bytes)]
    assert sum(done) == version.bytes


def test_add_digest_is_over_sorted_paths_digests_and_sizes(
    catalog: DataCatalog, folder: Path
) -> None:
    """The set's digest is blake3 over sorted ``path\\0digest\\0size\\n`` lines, so it does not
    depend on how files are read or packed."""
    lines = blake3.blake3()
    for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        if path.is_file():
            data = path.read_bytes()
            digest = "blake3:" + blake3.blake3(data).hexdigest()
            lines.update(f"{path.relative_to(folder).as_posix()}\0{digest}\0{len(data)}\n".encode())
    assert catalog.add(folder, name="images").version.digest == "blake3:" + lines.hexdigest()


def test_add_skips_symlinks_and_special_files_and_walks_nested_folders(
    catalog: DataCatalog, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.txt").write_bytes(b"deep")
    (root / "top.txt").write_bytes(b"top")
    (root / "link.txt").symlink_to(root / "top.txt")
    (root / "linked-dir").symlink_to(root / "a", target_is_directory=True)
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe")  # never opened: reading it would block
    version = catalog.add(root, name="tree").version
    assert (version.file_count, version.bytes) == (2, 7)
    written = catalog.checkout("tree@1", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "a/b/c/deep.txt",
        "top.txt",
    ]


def test_add_small_files_spanning_two_packs_leaves_no_temp_files(
    catalog: DataCatalog, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(70):  # 70 files just under 1 MiB: more than one 64 MiB pack
        (root / f"{i:04d}.bin").write_bytes(os.urandom((1 << 20) - 1 - i))
    version = catalog.add(root, name="many").version
    assert version.file_count == 70
    artifacts = settings.home / "artifacts"
    assert list((artifacts / "tmp").iterdir()) == []
    blobs = [p for p in (artifacts / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 3  # two packs and the manifest
    written = catalog.checkout("many@1", tmp_path / "out")
    assert len(written) == 70
    for path in root.iterdir():
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()
