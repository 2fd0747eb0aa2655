"""Versioning files and folders as they are, and checking them out again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
