"""Prediction records as segment tables and bytes."""

from __future__ import annotations

import itertools
import os
import time

import pyarrow as pa
import pytest

from loopml.serving import PredictionRecord, _predlog_record, new_prediction_id
from loopml.serving._predlog_record import segment_bytes, table_from_bytes, table_of


def _records(n: int) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            prediction_id=f"{i:032x}",
            ts_ms=1_700_000_000_000 + i,
            deployment="churn",
            model_version="churn@3",
            inputs={"i": i, "x": [1.5, None]},
            output={"prediction": i % 2, "fallback_reason": None},
            latency_ms=0.5 + i,
            fallback=i % 7 == 0,
            shadow=False,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [0, 1, 256, 257, 2000])
def test_table_of_keeps_every_record_in_order(n: int) -> None:
    records = _records(n)
    table = table_of(records)
    assert table.num_rows == n
    assert table["prediction_id"].to_pylist() == [r.prediction_id for r in records]
    assert table["latency_ms"].to_pylist() == [r.latency_ms for r in records]
    assert table["fallback"].to_pylist() == [r.fallback for r in records]


@pytest.mark.parametrize("n", [0, 1, 256, 257, 2000])
def test_a_segment_is_one_batch_with_the_bytes_of_a_one_step_build(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built in steps or at once, a segment has the same bytes: recovery after an upgrade
    recognises a segment written before it by its digest."""
    records = _records(n)
    stepped = segment_bytes(records)
    monkeypatch.setattr(_predlog_record, "_STEP_ROWS", 10**9)  # one step, as loopml once did
    assert segment_bytes(records) == stepped
    reader = pa.ipc.open_file(pa.BufferReader(stepped))
    assert reader.num_record_batches == min(n, 1)
    assert table_from_bytes(stepped)["prediction_id"].to_pylist() == [
        r.prediction_id for r in records
    ]


def test_prediction_ids_keep_their_creation_order_within_a_millisecond() -> None:
    """Records of one request share a millisecond; their ids still sort as answered, so
    the log reads them back in that order (the demo's count windows depend on it)."""
    ids = [new_prediction_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    now_ms = time.time_ns() // 1_000_000
    assert abs(int(ids[-1][:12], 16) - now_ms) < 1000  # the leading 48 bits are the time


def _frozen_clock(monkeypatch: pytest.MonkeyPatch, last_tail: int = 0) -> int:
    """Every id made from now on in one millisecond (later than any so far), as if the
    last id had ``last_tail`` as its random part; returns that millisecond."""
    ms = time.time_ns() // 1_000_000 + 10**6
    monkeypatch.setattr(time, "time_ns", lambda: ms * 1_000_000)
    monkeypatch.setattr(_predlog_record, "_last_id", [ms if last_tail else 0, last_tail])
    return ms


def _parts(prediction_id: str) -> tuple[int, int]:
    return int(prediction_id[:12], 16), int(prediction_id[12:], 16)


def test_ids_of_one_millisecond_count_up_by_random_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ordered, but an id does not tell its neighbours' (feedback takes any known id)."""
    ms = _frozen_clock(monkeypatch)
    parts = [_parts(new_prediction_id()) for _ in range(1000)]
    assert {m for m, _ in parts} == {ms}
    steps = [b - a for (_, a), (_, b) in itertools.pairwise(parts)]
    assert min(steps) >= 1 and len(set(steps)) > 990  # distinct random steps, not +1
    assert max(steps) <= 1 << 48


def test_a_millisecond_that_runs_out_of_ids_moves_to_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ms = _frozen_clock(monkeypatch, last_tail=(1 << 80) - 2)
    after = [new_prediction_id() for _ in range(3)]
    assert [m for m, _ in map(_parts, after)] == [ms + 1] * 3
    assert after == sorted(after) and f"{ms:012x}{(1 << 80) - 2:020x}" < after[0]


def test_a_forked_child_draws_ids_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child forked in the parent's millisecond must not count up from the parent's
    last id (two workers would hand out the same ids): it draws a first id afresh."""
    _frozen_clock(monkeypatch, last_tail=1 << 79)  # above any first id's 79 random bits
    read, write = os.pipe()
    parent_last = new_prediction_id()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running pytest's teardown
        os.write(write, new_prediction_id().encode())
        os._exit(0)
    os.close(write)
    child_first = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child_first) == 32 and child_first[:12] == parent_last[:12]
    assert _parts(child_first)[1] < 1 << 79 < _parts(parent_last)[1]
