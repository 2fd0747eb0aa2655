"""Run artifacts: stored by digest, listed, read back and downloaded inside a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core import IntegrityError, NotFoundError, Settings, ValidationError
from loopml.tracking import Client


def test_log_file_folder_text_and_dict(settings: Settings, tmp_path: Path) -> None:
    client = Client(settings)
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01")
    (model / "sub" / "meta.txt").write_text("meta")
    with client.start_run("exp") as run:
        run.log_artifact(model)
        run.log_artifact(model / "weights.bin", "copies/w.bin")
        run.log_text("hello", "notes/readme.txt")
        run.log_dict({"a": 1}, "config.json")
    paths = [ref.path for ref in client.list_artifacts(run.id)]
    assert paths == [
        "config.json",
        "copies/w.bin",
        "model/sub/meta.txt",
        "model/weights.bin",
        "notes/readme.txt",
    ]
    assert client.read_artifact(run.id, "notes/readme.txt") == b"hello"
    written = client.download_artifacts(run.id, tmp_path / "out", path="model")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "model/sub/meta.txt",
        "model/weights.bin",
    ]
    client.close()


def test_same_bytes_in_two_runs_stored_once(settings: Settings) -> None:
    client = Client(settings)
    digests = []
    for _ in range(2):
        with client.start_run("exp") as run:
            digests.append(run.log_text("same bytes", "a.txt").digest)
    assert digests[0] == digests[1]
    blobs = [
        p for p in (settings.home / "artifacts").rglob("*") if p.is_file() and "blobs" in p.parts
    ]
    assert len(blobs) == 1
    client.close()


def test_sad_tampered_artifact_raises_integrity_error(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        ref = run.log_text("original", "a.txt")
    blob = next(p for p in (settings.home / "artifacts").rglob(ref.digest.split(":")[1]))
    blob.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=ref.digest):
        client.read_artifact(run.id, "a.txt")
    client.close()


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
def test_sad_artifact_path_cannot_escape(settings: Settings, bad: str) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        with pytest.raises(ValidationError):
            run.log_text("x", bad)
    client.close()


def test_sad_missing_artifact_and_source(settings: Settings, tmp_path: Path) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        with pytest.raises(ValidationError, match="does not exist"):
            run.log_artifact(tmp_path / "nope.bin")
    with pytest.raises(NotFoundError, match="has no artifact 'x.txt'"):
        client.read_artifact(run.id, "x.txt")
    client.close()
