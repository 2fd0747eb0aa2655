"""The prediction log's journal rotation and segmenter thread: a journal is locked before it
has a journal's name (so no recovery can delete it), a segment write that fails in any way
is retried without losing the thread, a closing log does not wait out a retry pause, and
records whose fixed fields Arrow could not store are refused at append."""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loopml.core import Settings, ValidationError, now_ms
from loopml.serving import PredictionLog, PredictionRecord, new_prediction_id
from loopml.serving._predlog_journal import Journal, orphaned_journals
from loopml.serving._predlog_segments import write_segments


def _record(i: int = 0) -> PredictionRecord:
    return PredictionRecord(
        new_prediction_id(), now_ms(), "churn", "churn@1", {"i": i}, {"label": 1}, 1.0
    )


def test_a_journal_is_named_only_once_locked_and_stale_creations_are_cleared(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "predlog"
    journal = Journal(folder)
    assert [p.name for p in folder.iterdir()] == [journal.path.name]
    assert list(orphaned_journals(folder, own=tmp_path / "none")) == []  # locked: left alone

    pending = folder / ".pending-journal-99-abcd.log"  # a creation in flight elsewhere
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    list(orphaned_journals(folder, own=journal.path))
    assert pending.exists()  # its creator is alive: not touched
    os.close(fd)  # the creator died before naming it
    list(orphaned_journals(folder, own=journal.path))
    assert not pending.exists()
    journal.remove()
    assert list(folder.iterdir()) == []


def test_any_segment_failure_is_retried_and_the_segmenter_lives_on(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = write_segments
    failures = {"left": 2}

    def flaky(*args: Any) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not an OSError")
        return real(*args)

    monkeypatch.setattr("loopml.serving._predlog.write_segments", flaky)
    with PredictionLog(sqlite_settings, segment_interval_s=0.05) as log:
        ids = [f.result(5) for f in log.append_many([_record(i) for i in range(5)])]
        deadline = time.monotonic() + 30
        while log.stats.segments == 0:
            assert time.monotonic() < deadline, "no segment after the failures"
            time.sleep(0.02)
        assert failures["left"] == 0 and log._segmenter.is_alive()
        assert sorted(log.scan("churn")["prediction_id"].to_pylist()) == sorted(ids)
    assert not any((sqlite_settings.home / "predlog").glob("*journal-*"))


def test_close_ends_a_retry_pause_and_leaves_the_records_for_recovery(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> int:
        raise RuntimeError("the store is away")

    monkeypatch.setattr("loopml.serving._predlog.write_segments", broken)
    log = PredictionLog(sqlite_settings, segment_interval_s=0.05)
    kept = [f.result(5) for f in log.append_many([_record(i) for i in range(3)])]
    time.sleep(0.2)  # sealed, failed, now pausing before the next try
    log.segment_interval_s = 600.0  # a pause close() must not wait out
    closing = threading.Thread(target=log.close)
    closing.start()
    closing.join(60)
    assert not closing.is_alive(), "close() waited out the retry pause"
    monkeypatch.undo()
    with PredictionLog(sqlite_settings) as recovered:
        assert recovered.stats.recovered == 3
        assert sorted(recovered.scan("churn")["prediction_id"].to_pylist()) == sorted(kept)


@pytest.mark.parametrize(
    ("field", "value"),
    [("prediction_id", uuid.uuid4()), ("ts_ms", 1.5), ("deployment", None), ("latency_ms", "1")],
)
def test_records_with_fixed_fields_arrow_cannot_store_are_refused(
    sqlite_settings: Settings, field: str, value: Any
) -> None:
    with PredictionLog(sqlite_settings) as log:
        with pytest.raises(ValidationError, match=f"field '{field}' must be"):
            changes: dict[str, Any] = {field: value}
            log.append(replace(_record(), **changes))
        assert log.stats.records == 0
