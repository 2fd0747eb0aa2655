"""Behaviour of the content-addressed blob store and of safe artifact paths."""

from __future__ import annotations

import importlib.util
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

import loopml.artifacts
from loopml.artifacts import ArtifactStore, BlobInfo, safe_join, safe_relative_path
from loopml.core import BackendError, IntegrityError, NotFoundError, ValidationError

MISSING = "blake3:" + "0" * 64


def _digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def _blob_path(root: Path, digest: str) -> Path:
    hex_ = digest.removeprefix("blake3:")
    return root / "blobs" / "blake3" / hex_[:2] / hex_[2:4] / hex_


def _corrupt(root: Path, digest: str) -> None:
    _blob_path(root, digest).write_bytes(b"tampered")


@pytest.fixture
def memory_url() -> Iterator[str]:
    import fsspec

    path = f"/loopml-test-{uuid.uuid4().hex}"
    yield f"memory://{path}"
    fs = fsspec.filesystem("memory")
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_exports_happy() -> None:
    """Every public name is importable from the package and reports it as its module."""
    for name in loopml.artifacts.__all__:
        assert getattr(loopml.artifacts, name).__module__ == "loopml.artifacts"


def test_put_bytes_happy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"hello")
    assert info == BlobInfo(digest=_digest(b"hello"), size=5)
    assert store.get_bytes(info.digest) == b"hello"


def test_put_bytes_happy_layout(tmp_path: Path) -> None:
    info = ArtifactStore(str(tmp_path)).put_bytes(b"layout")
    assert _blob_path(tmp_path, info.digest).read_bytes() == b"layout"


def test_put_bytes_happy_file_url(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path.as_uri())
    info = store.put_bytes(b"via file url")
    assert store.url == tmp_path.as_uri()
    assert _blob_path(tmp_path, info.digest).read_bytes() == b"via file url"


def test_put_bytes_happy_dedup_writes_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put_bytes(b"same")
    blob = _blob_path(tmp_path, first.digest)
    written_ns = blob.stat().st_mtime_ns
    os.utime(blob, ns=(written_ns - 10**9, written_ns - 10**9))
    assert store.put_bytes(b"same") == first
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [blob]
    assert blob.stat().st_mtime_ns == written_ns - 10**9


def test_put_bytes_happy_empty(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"")
    assert info.size == 0
    assert store.get_bytes(info.digest) == b""


def test_put_bytes_sad_not_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"expects bytes.*got str"):
        ArtifactStore(tmp_path).put_bytes("text")  # type: ignore[arg-type]


def test_put_file_happy(tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights" * 1000)
    store = ArtifactStore(tmp_path / "store")
    info = store.put_file(source)
    assert info == BlobInfo(_digest(source.read_bytes()), 7000)
    assert store.get_bytes(info.digest) == source.read_bytes()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_put_file_happy_large_streamed(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    hasher = blake3.blake3()
    with open(source, "wb") as out:
        for i in range(20):
            chunk = bytes([i]) * (1024 * 1024) + os.urandom(17)
            hasher.update(chunk)
            out.write(chunk)
    store = ArtifactStore(tmp_path / "store")
    info = store.put_file(source)
    assert info.digest == "blake3:" + hasher.hexdigest()
    assert info.size == 20 * (1024 * 1024 + 17)
    assert store.size(info.digest) == info.size
    dest = store.download(info.digest, tmp_path / "out" / "big.bin")
    assert blake3.blake3(dest.read_bytes()).hexdigest() == hasher.hexdigest()


def test_put_file_sad_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"nope\.bin' to store does not exist"):
        ArtifactStore(tmp_path / "store").put_file(tmp_path / "nope.bin")


def test_put_stream_happy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    stream = io.BytesIO(b"streamed bytes")
    info = store.put_stream(stream)
    assert info == BlobInfo(_digest(b"streamed bytes"), 14)
    assert not stream.closed
    with store.open(info.digest) as f:
        assert f.read() == b"streamed bytes"


def test_put_stream_happy_dedup_writes_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put_stream(io.BytesIO(b"twice"))
    assert store.put_stream(io.BytesIO(b"twice")) == first
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [_blob_path(tmp_path, first.digest)]


def test_put_stream_sad_text_stream(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"binary file object.*got str"):
        ArtifactStore(tmp_path).put_stream(io.StringIO("text"))  # type: ignore[arg-type]


def test_exists_happy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"here")
    assert store.exists(info.digest)
    assert not store.exists(MISSING)


def test_get_bytes_sad_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=f"blob {MISSING} not found"):
        ArtifactStore(tmp_path).get_bytes(MISSING)


def test_size_sad_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=MISSING):
        ArtifactStore(tmp_path).size(MISSING)


def test_open_sad_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=MISSING):
        ArtifactStore(tmp_path).open(MISSING)


def test_download_sad_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=MISSING):
        ArtifactStore(tmp_path / "store").download(MISSING, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 64,
        "sha256:" + "0" * 64,
        "blake3:" + "0" * 63,
        "blake3:" + "A" * 64,
        "blake3:" + "0" * 64 + "\n",
        "blake3:../../etc/passwd",
        None,
    ],
)
@pytest.mark.parametrize("method", ["exists", "size", "get_bytes", "open"])
def test_digest_sad_malformed(tmp_path: Path, method: str, bad: object) -> None:
    with pytest.raises(ValidationError, match="digest must be 'blake3:' followed by 64"):
        getattr(ArtifactStore(tmp_path), method)(bad)


def test_download_sad_malformed_digest(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"digest must be .*got 'blake3:xyz'"):
        ArtifactStore(tmp_path).download("blake3:xyz", tmp_path / "out")


def test_get_bytes_sad_blob_changed_on_disk(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"original")
    _corrupt(tmp_path, info.digest)
    found = _digest(b"tampered")
    with pytest.raises(IntegrityError, match=f"{info.digest} at .* hash to {found}"):
        store.get_bytes(info.digest)


def test_open_sad_blob_changed_on_disk(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"original")
    _corrupt(tmp_path, info.digest)
    with store.open(info.digest) as f:
        with pytest.raises(IntegrityError, match=info.digest):
            f.read()


def test_open_sad_blob_changed_on_disk_chunked_read(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"original")
    _corrupt(tmp_path, info.digest)
    with store.open(info.digest) as f:
        assert f.read(3) == b"tam"
        with pytest.raises(IntegrityError, match=info.digest):
            while f.read(3):
                pass


def test_open_happy_partial_read_is_not_verified(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    info = store.put_bytes(b"original")
    _corrupt(tmp_path, info.digest)
    with store.open(info.digest) as f:
        assert f.read(8) == b"tampered"


def test_open_happy_chunked_read_to_eof(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 5)
    info = store.put_bytes(data)
    with store.open(info.digest) as f:
        parts = list(iter(lambda: f.read(100_000), b""))
    assert b"".join(parts) == data


def test_download_happy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    info = store.put_bytes(b"payload")
    dest = store.download(info.digest, tmp_path / "a" / "b" / "out.bin")
    assert dest == tmp_path / "a" / "b" / "out.bin"
    assert dest.read_bytes() == b"payload"
    assert [p.name for p in dest.parent.iterdir()] == ["out.bin"]


def test_download_sad_blob_changed_on_disk(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    info = store.put_bytes(b"original")
    _corrupt(tmp_path / "store", info.digest)
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match=info.digest):
        store.download(info.digest, tmp_path / "out" / "file.bin")
    assert list((tmp_path / "out").iterdir()) == []


def test_download_sad_blob_changed_keeps_existing_dest(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    info = store.put_bytes(b"original")
    _corrupt(tmp_path / "store", info.digest)
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError):
        store.download(info.digest, dest)
    assert dest.read_bytes() == b"previous"


def test_memory_roundtrip_happy(memory_url: str) -> None:
    store = ArtifactStore(memory_url)
    info = store.put_bytes(b"in memory")
    assert store.exists(info.digest)
    assert store.size(info.digest) == 9
    assert store.get_bytes(info.digest) == b"in memory"
    with store.open(info.digest) as f:
        assert f.read() == b"in memory"


def test_memory_put_stream_happy(memory_url: str, tmp_path: Path) -> None:
    store = ArtifactStore(memory_url)
    info = store.put_stream(io.BytesIO(b"x" * 100_000))
    assert store.put_stream(io.BytesIO(b"x" * 100_000)) == info
    assert store.download(info.digest, tmp_path / "x.bin").read_bytes() == b"x" * 100_000


def test_memory_get_bytes_sad_missing(memory_url: str) -> None:
    with pytest.raises(NotFoundError, match=MISSING):
        ArtifactStore(memory_url).get_bytes(MISSING)


def test_memory_get_bytes_sad_blob_changed(memory_url: str) -> None:
    import fsspec

    store = ArtifactStore(memory_url)
    info = store.put_bytes(b"original")
    hex_ = info.digest.removeprefix("blake3:")
    key = f"{memory_url}/blobs/blake3/{hex_[:2]}/{hex_[2:4]}/{hex_}"
    fsspec.filesystem("memory").pipe_file(key, b"tampered")
    with pytest.raises(IntegrityError, match=f"{info.digest} at memory://"):
        store.get_bytes(info.digest)


def test_init_sad_unknown_protocol() -> None:
    with pytest.raises(ValidationError, match="'nope://x' is not usable"):
        ArtifactStore("nope://x")


def test_init_sad_storage_options_for_local(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="storage_options apply to remote"):
        ArtifactStore(tmp_path, storage_options={"key": "secret"})


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_init_sad_s3_extra_missing() -> None:
    with pytest.raises(BackendError, match=r"pip install 'loopml\[s3\]'"):
        ArtifactStore("s3://bucket/prefix")


def test_put_bytes_sad_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    store = ArtifactStore(tmp_path / "file")
    with pytest.raises(BackendError, match="failed to write blob") as caught:
        store.put_bytes(b"x")
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model/model.pkl", "model/model.pkl"),
        ("./a/b.txt", "a/b.txt"),
        ("a//b/./c/", "a/b/c"),
        ("a/../b", "b"),
        ("..a/b..", "..a/b.."),
    ],
)
def test_safe_relative_path_happy(name: str, expected: str) -> None:
    assert safe_relative_path(name) == expected


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "it is empty"),
        ("/etc/passwd", "it is absolute"),
        ("C:\\x", "it is absolute"),
        ("C:/x", "it is absolute"),
        ("../x", "escapes the root"),
        ("a/../../x", "escapes the root"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL byte"),
        (".", r"normalizes to '\.'"),
        ("a/..", r"normalizes to '\.'"),
    ],
)
def test_safe_relative_path_sad(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        safe_relative_path(name)


def test_safe_join_happy(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "./m/model.pkl") == tmp_path / "m" / "model.pkl"


def test_safe_join_sad_symlink_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ValidationError, match=r"'link/secret' resolves to .* outside the root"):
        safe_join(root, "link/secret")


def test_safe_join_sad_dotdot(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="escapes the root"):
        safe_join(tmp_path, "../x")


def _stored_blobs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


def test_put_chunks_happy_generator(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    parts: list[bytes | bytearray | memoryview] = [
        b"alpha",
        bytearray(b"beta"),
        memoryview(b"gamma" * 1_000_000),
    ]
    info = store.put_chunks(part for part in parts)
    whole = b"".join(bytes(part) for part in parts)
    assert info == BlobInfo(_digest(whole), len(whole))
    assert store.get_bytes(info.digest) == whole
    assert store.put_chunks([whole]) == info  # the same bytes, one chunk: the same blob
    assert _stored_blobs(tmp_path) == [_blob_path(tmp_path, info.digest)]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_put_chunks_happy_memory(memory_url: str) -> None:
    store = ArtifactStore(memory_url)
    info = store.put_chunks([b"in ", b"memory"])
    assert store.get_bytes(info.digest) == b"in memory"


def test_put_chunks_sad_not_bytes_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValidationError, match=r"bytes-like chunks \(got str\)"):
        store.put_chunks([b"ok", "text"])  # type: ignore[list-item]
    assert _stored_blobs(tmp_path) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_batch_happy_blobs_stored_when_block_ends(tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 << 20))
    store = ArtifactStore(tmp_path / "store")
    with store.batch():
        small = store.put_bytes(b"small")
        again = store.put_bytes(b"small")  # equal bytes inside one batch: written once
        chunks = store.put_chunks([b"a", b"b"])
        big = store.put_file(source)
        # Not stored yet: a digest must not be recorded anywhere before the block ends.
        assert not store.exists(small.digest)
        assert len(list((tmp_path / "store" / "tmp").iterdir())) == 3
    assert again == small
    assert store.get_bytes(small.digest) == b"small"
    assert store.get_bytes(chunks.digest) == b"ab"
    assert store.get_bytes(big.digest) == source.read_bytes()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_batch_happy_nested_commits_with_outermost(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.batch():
        with store.batch():
            info = store.put_bytes(b"inner")
        assert not store.exists(info.digest)
    assert store.get_bytes(info.digest) == b"inner"


def test_batch_happy_dedup_with_stored_blob(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put_bytes(b"kept")
    with store.batch():
        assert store.put_bytes(b"kept") == first
        assert list((tmp_path / "tmp").iterdir()) == []  # nothing written for it
    assert _stored_blobs(tmp_path) == [_blob_path(tmp_path, first.digest)]


def test_batch_sad_error_in_block_stores_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError, match="stop"), store.batch():
        info = store.put_bytes(b"never stored")
        raise RuntimeError("stop")
    assert not store.exists(info.digest)
    assert _stored_blobs(tmp_path) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.put_bytes(b"after") and store.exists(_digest(b"after"))  # batch is over


def test_batch_happy_other_threads_not_deferred(tmp_path: Path) -> None:
    import threading

    store = ArtifactStore(tmp_path)
    seen: list[bool] = []

    def put_elsewhere() -> None:
        seen.append(store.exists(store.put_bytes(b"other thread").digest))

    with store.batch():
        thread = threading.Thread(target=put_elsewhere)
        thread.start()
        thread.join()
    assert seen == [True]


def test_batch_happy_memory_store_writes_at_once(memory_url: str) -> None:
    store = ArtifactStore(memory_url)
    with store.batch():
        info = store.put_bytes(b"remote")
        assert store.exists(info.digest)


def test_put_file_happy_large_already_stored_is_not_copied_again(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(40 << 20))  # hashed alongside the copy
    store = ArtifactStore(tmp_path / "store")
    first = store.put_file(source)
    blob = _blob_path(tmp_path / "store", first.digest)
    written_ns = blob.stat().st_mtime_ns
    assert store.put_file(source) == first
    assert blob.stat().st_mtime_ns == written_ns  # not replaced
    assert _stored_blobs(tmp_path / "store") == [blob]
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    assert store.get_bytes(first.digest) == source.read_bytes()


def test_put_file_happy_empty(tmp_path: Path) -> None:
    source = tmp_path / "empty.bin"
    source.write_bytes(b"")
    info = ArtifactStore(tmp_path / "store").put_file(source)
    assert info == BlobInfo(_digest(b""), 0)
