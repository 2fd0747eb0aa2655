"""The durable prediction log: group commit, segments, recovery, and a SIGKILL under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loopml.core import Settings, ValidationError, now_ms
from loopml.serving import PredictionLog, PredictionRecord, new_prediction_id
from loopml.serving._predlog_record import encode_line

ROOT = Path(__file__).resolve().parents[2]


def _record(deployment: str = "churn", i: int = 0, **extra: object) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=new_prediction_id(),
        ts_ms=now_ms(),
        deployment=deployment,
        model_version="churn@3",
        inputs={"i": i, "x": [1.5, None]},
        output={"label": i % 2, "p": 0.25},
        latency_ms=1.25,
        fallback=bool(extra.get("fallback", False)),
        shadow=bool(extra.get("shadow", False)),
    )


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_prediction_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    earlier = new_prediction_id()
    time.sleep(0.002)
    assert new_prediction_id() > earlier


def test_append_find_tail_scan(settings: Settings) -> None:
    with PredictionLog(settings) as log:
        records = [_record("churn" if i % 3 else "fraud", i, fallback=i == 4) for i in range(30)]
        ids = [f.result(5) for f in log.append_many(records)]
        assert ids == [r.prediction_id for r in records]
        assert log.find(records[4].prediction_id) == records[4]  # live, from the journal
        assert log.find(new_prediction_id()) is None
    with PredictionLog(settings) as log:  # after close: from segments only
        assert log.find(records[4].prediction_id) == records[4]
        churn = [r for r in records if r.deployment == "churn"]
        newest = sorted(churn, key=lambda r: (r.ts_ms, r.prediction_id), reverse=True)
        assert log.tail("churn", n=5) == newest[:5]
        late = _record("churn", 99)
        log.append(late).result(5)
        assert log.tail("churn", n=1) == [late]
        table = log.scan("fraud")
        assert table.num_rows == 10 and set(table["deployment"].to_pylist()) == {"fraud"}
        assert log.scan("churn", since_ms=late.ts_ms).num_rows >= 1
        assert log.scan("nobody").num_rows == 0


def test_group_commit_shares_fsyncs(sqlite_settings: Settings) -> None:
    with PredictionLog(sqlite_settings) as log:
        futures = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            for i in range(125):
                future = log.append(_record(f"d{worker}", i))
                with lock:
                    futures.append(future)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({f.result(10) for f in futures}) == 1000
        stats = log.stats
        assert stats.records == 1000
        assert stats.fsyncs == stats.groups < 500, stats
    with PredictionLog(sqlite_settings) as log:
        assert sum(log.scan(f"d{w}").num_rows for w in range(8)) == 1000


def test_scan_during_segment_cuts_misses_and_repeats_nothing(sqlite_settings: Settings) -> None:
    """Cuts every few records while another thread appends: each scan holds every record
    acknowledged before it started, once (a cut between reading the segments and the live
    records used to hide the records it moved)."""
    acknowledged: list[str] = []
    stop = threading.Event()
    with PredictionLog(sqlite_settings, segment_rows=20, segment_interval_s=0.01) as log:

        def append() -> None:  # bounded: each scan reads every segment cut so far
            while not stop.is_set() and len(acknowledged) < 1500:
                acknowledged.append(log.append(_record()).result(10))

        writer = threading.Thread(target=append)
        writer.start()
        try:
            scans = 0
            while writer.is_alive() or scans < 20:
                before = list(acknowledged)
                ids = log.scan("churn")["prediction_id"].to_pylist()
                assert len(ids) == len(set(ids))
                assert set(before) <= set(ids)
                scans += 1
        finally:
            stop.set()
            writer.join()
        assert log.stats.segments > 5  # the scans did race with cuts


def test_segments_are_cut_by_rows(sqlite_settings: Settings) -> None:
    with PredictionLog(sqlite_settings, segment_rows=50, segment_interval_s=60) as log:
        for future in log.append_many([_record(i=i) for i in range(120)]):
            future.result(5)
        deadline = time.monotonic() + 5
        while log.stats.segments < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.stats.segments >= 1
        assert log.scan("churn").num_rows == 120


def _journal_of(settings: Settings, name: str, lines: list[bytes]) -> Path:
    folder = settings.home / "predlog"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"journal-{name}.log"
    path.write_bytes(b"".join(lines))
    return path


def test_recovers_a_journal_left_behind_and_drops_a_torn_line(settings: Settings) -> None:
    kept = [_record(i=i) for i in range(5)]
    torn = encode_line(_record(i=5))[:-7]  # the crash came mid-write: no newline
    bitten = bytearray(encode_line(_record(i=6)))
    bitten[20] ^= 1  # a checksum mismatch
    path = _journal_of(settings, "1-dead", [encode_line(r) for r in kept] + [bytes(bitten), torn])
    with PredictionLog(settings) as log:
        assert log.stats.recovered == 5 and log.stats.dropped_lines == 2
        assert not path.exists()
        assert all(log.find(r.prediction_id) == r for r in kept)
        assert log.scan("churn").num_rows == 5
    with PredictionLog(settings) as log:  # recovered once, not again
        assert log.stats.recovered == 0 and log.scan("churn").num_rows == 5


def test_a_live_process_journal_is_left_alone(sqlite_settings: Settings) -> None:
    with PredictionLog(sqlite_settings) as first:
        first.append(_record(i=1)).result(5)
        with PredictionLog(sqlite_settings) as second:
            assert second.stats.recovered == 0
        assert first._journal.path.exists()


def test_non_durable_mode(sqlite_settings: Settings) -> None:
    with PredictionLog(sqlite_settings, durable=False) as log:
        futures = log.append_many([_record(i=i) for i in range(100)])
        assert all(f.done() for f in futures)
        log.flush(5)
        assert log.stats.records == 100 and log.stats.fsyncs == 0
    with PredictionLog(sqlite_settings) as log:
        assert log.scan("churn").num_rows == 100


def test_sigkill_under_load_loses_no_acknowledged_prediction(settings: Settings) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.serving.predlog_writer", str(settings.home), settings.db_url],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    acknowledged: list[str] = []
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 2.0
        reader = threading.Thread(
            target=lambda: acknowledged.extend(
                line.decode().strip()
                for line in iter(process.stdout.readline, b"")  # type: ignore[union-attr]
            ),
            daemon=True,
        )
        reader.start()
        time.sleep(max(0.0, deadline - time.monotonic()))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    acknowledged = [a for a in acknowledged if len(a) == 32]
    assert len(acknowledged) > 100
    with PredictionLog(settings) as log:
        logged = set(log.scan("dep0")["prediction_id"].to_pylist())
        logged |= set(log.scan("dep1")["prediction_id"].to_pylist())
        missing = [a for a in acknowledged if a not in logged]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged ids lost"
        assert log.find(acknowledged[-1]) is not None


@pytest.mark.parametrize("durable", [True, False])
def test_throughput_figure(sqlite_settings: Settings, durable: bool) -> None:
    """Not a benchmark gate: prints appends/s (pytest -s) for the docs."""
    with PredictionLog(sqlite_settings, durable=durable) as log:
        records = [_record(i=i) for i in range(5000)]
        start = time.perf_counter()
        futures: list[object] = []
        threads = [
            threading.Thread(
                target=lambda part: futures.extend(log.append(r) for r in part),
                args=(records[w::8],),
            )
            for w in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.flush(30)
        elapsed = time.perf_counter() - start
        stats = log.stats
    print(
        f"durable={durable}: {len(records) / elapsed:,.0f} appends/s, "
        f"{stats.fsyncs / stats.records:.4f} fsyncs/record, {stats.groups} groups"
    )


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), float("inf"), 3600.5])
def test_a_segment_interval_must_be_positive_and_at_most_an_hour(
    sqlite_settings: Settings, interval: float
) -> None:
    with pytest.raises(ValidationError, match="segment_interval_s must be a number of seconds"):
        PredictionLog(sqlite_settings, segment_interval_s=interval)
