"""The durable prediction log: group commit to a journal, segments in the artifact store.

``append`` queues a record; one writer thread takes everything queued, writes it to this
process's journal with one ``write`` and one ``fsync`` (group commit), then resolves the
futures. Every ``segment_rows`` records or ``segment_interval_s`` seconds the writer seals
the journal and starts a new one; a second thread turns the sealed journal's records into
Arrow IPC segments (one per deployment) in the artifact store, indexes them in
``prediction_segments``, and only then deletes the sealed journal. Writing segments (an
fsync of the blob, of its folder and a database commit) therefore never holds up a
commit, so no request waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.artifacts import ArtifactStore
from loopml.core import BackendError, Settings, ValidationError
from loopml.serving._predlog_journal import Journal, orphaned_journals, read_journal
from loopml.serving._predlog_record import (
    PredictionRecord,
    encode_line,
    table_from_bytes,
    table_of,
)
from loopml.serving._predlog_segments import find_in_segments, tail, write_segments
from loopml.store import open_store, schema

__all__ = [
    "MAX_SEGMENT_INTERVAL_S",
    "SEGMENT_INTERVAL_S",
    "PredictionLog",
    "PredictionLogStats",
]

SEGMENT_INTERVAL_S = 2.0  # between seals, unless asked otherwise
# The longest a log waits between seals: the writer's waits use it as a lock timeout, and
# readers elsewhere (monitoring, ``predictions tail``) would see nothing newer meanwhile.
MAX_SEGMENT_INTERVAL_S = 3600.0

_log = logging.getLogger("loopml.serving.predlog")
_SEGS = schema.prediction_segments


@dataclass(frozen=True)
class PredictionLogStats:
    """Counters of one :class:`PredictionLog` since it opened."""

    records: int  # journaled
    groups: int  # journal writes (one per group commit)
    fsyncs: int
    segments: int  # segment blobs recorded (recovery included)
    recovered: int  # records recovered from journals of dead processes
    dropped_lines: int  # torn or corrupt journal lines dropped during recovery


@dataclass(frozen=True)
class _Group:
    """Records appended together, resolved together by one future (their ids)."""

    records: list[PredictionRecord]
    lines: bytes
    future: Future[list[str]]


@dataclass(frozen=True)
class _Sealed:
    """A journal the writer no longer appends to, and how many records it holds: the
    first ``count`` of the log's live records, until they are in segments."""

    journal: Journal
    count: int


def _first_of(single: Future[str]) -> Any:
    """A done-callback passing a one-record group's outcome on to ``single``."""

    def done(group: Future[list[str]]) -> None:
        error = group.exception()
        if error is not None:
            single.set_exception(error)
        else:
            single.set_result(group.result()[0])

    return done


class PredictionLog:
    """Append-only log of predictions; see the module docstring and docs/serving.md.

    Args:
        durable: resolve an append's future only once its record is fsynced (the
            default); when False, once it is queued (a SIGKILL still loses nothing the
            writer had written, a machine crash may lose the last moments).
        max_batch: the most records one group commit writes (a group is never split).
        segment_rows / segment_interval_s: when journaled records become a segment (which
            monitoring and other processes read): shorter is fresher for them, at the
            cost of more, smaller segments.

    Raises (from the constructor):
        BackendError: the journal folder, the artifact store or the database fails.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        durable: bool = True,
        max_batch: int = 1000,
        segment_rows: int = 10_000,
        segment_interval_s: float = SEGMENT_INTERVAL_S,
    ) -> None:
        if max_batch < 1 or segment_rows < 1:
            raise ValidationError("max_batch and segment_rows must be >= 1")
        if not 0 < segment_interval_s <= MAX_SEGMENT_INTERVAL_S:  # NaN fails too
            raise ValidationError(
                f"segment_interval_s must be a number of seconds > 0 and <= "
                f"{MAX_SEGMENT_INTERVAL_S:g}; got {segment_interval_s!r}"
            )
        self.durable = durable
        self._max_batch = max_batch
        self._segment_rows = segment_rows
        self.segment_interval_s = segment_interval_s
        self._folder = settings.home / "predlog"
        self._artifacts = ArtifactStore(settings.artifacts_url)
        self._store = open_store(settings.db_url)
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the writer waits on it for appends
        self._sealing = threading.Condition(lock)  # the segmenter waits on it for seals
        self._written = threading.Condition(lock)  # flush() waits on it for commits
        self._enqueued = self._done = 0  # groups queued, and written (or failed), so far
        self._queue: list[_Group] = []
        self._queued_rows = 0
        self._live: list[PredictionRecord] = []  # journaled, not yet in a segment
        self._unsealed = 0  # of which in the current journal (the last ones)
        self._sealed: list[_Sealed] = []  # oldest first; the segmenter's work
        self._journal: Journal | None = None
        self._spare: Journal | None = None  # the next journal, opened ahead by the segmenter
        self._closing = False
        self._closed = False
        self._counts = dict.fromkeys(PredictionLogStats.__dataclass_fields__, 0)
        try:
            self._journal = Journal(self._folder)
            self._recover(self._journal.path)
        except (OSError, BackendError) as exc:
            if self._journal is not None:
                with contextlib.suppress(OSError):
                    self._journal.remove()
            self._store.close()
            raise BackendError(f"prediction log in {self._folder} failed to open: {exc}") from exc
        self._last_seal = time.monotonic()
        self._writer_done = False
        self._thread = threading.Thread(target=self._run, name="loopml-predlog", daemon=True)
        self._segmenter = threading.Thread(
            target=self._segment_sealed, name="loopml-predlog-segments", daemon=True
        )
        self._thread.start()
        self._segmenter.start()

    # -- writing -------------------------------------------------------------------

    def append(self, record: PredictionRecord) -> Future[str]:
        """Queue ``record``; the future gives its prediction id once durable (or queued).

        Raises:
            ValidationError: the record is not JSON-serializable.
            BackendError: the log is closed.
        """
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[PredictionRecord]) -> list[Future[str]]:
        """:meth:`append` for several records, queued together, one future each."""
        futures: list[Future[str]] = []
        groups = [self._group([record]) for record in records]
        for group in groups:
            single: Future[str] = Future()
            single.set_running_or_notify_cancel()
            group.future.add_done_callback(_first_of(single))
            futures.append(single)
        self._enqueue(groups)
        return futures

    def append_group(self, records: Iterable[PredictionRecord]) -> Future[list[str]]:
        """Queue ``records`` together; one future gives all their ids once durable (or
        queued). Cheaper than :meth:`append_many` when the caller waits for them all.

        Raises:
            ValidationError: a record is not JSON-serializable (nothing is queued).
            BackendError: the log is closed.
        """
        group = self._group(list(records))
        self._enqueue([group])
        return group.future

    def _group(self, records: list[PredictionRecord]) -> _Group:
        group = _Group(records, b"".join(encode_line(r) for r in records), Future())
        group.future.set_running_or_notify_cancel()
        if not self.durable:
            # Resolved before the writer can see it: once queued, the writer may
            # resolve it first, and a future resolves only once.
            group.future.set_result([r.prediction_id for r in records])
        return group

    def _enqueue(self, groups: list[_Group]) -> None:
        with self._cond:
            if self._closing:
                raise BackendError("the prediction log is closed")
            was_empty = not self._queue
            self._queue.extend(groups)
            self._enqueued += len(groups)
            self._queued_rows += sum(len(g.records) for g in groups)
            if self.durable or was_empty or self._queued_rows >= self._max_batch:
                self._cond.notify()

    def _take(self) -> list[_Group]:
        """The oldest queued groups, up to ``max_batch`` records (at least one group)."""
        taken, rows = 0, 0
        while taken < len(self._queue):
            size = len(self._queue[taken].records)
            if taken and rows + size > self._max_batch:
                break
            taken, rows = taken + 1, rows + size
        batch = self._queue[:taken]
        del self._queue[:taken]
        self._queued_rows -= rows
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    # every append wakes the writer (a non-durable one, the first of a
                    # batch): the timeout is only for sealing on time when traffic stops
                    until_seal = self._last_seal + self.segment_interval_s - time.monotonic()
                    wait = until_seal if self._unsealed else self.segment_interval_s
                    self._cond.wait(max(wait, 0.001))
                batch = self._take()
                done = self._closing and not self._queue
            if batch:
                self._commit(batch)
            due = time.monotonic() - self._last_seal >= self.segment_interval_s
            if self._unsealed and (done or due or self._unsealed >= self._segment_rows):
                self._seal(last=done)
            if done:
                with self._cond:
                    self._writer_done = True
                    self._sealing.notify()
                return

    def _commit(self, batch: list[_Group]) -> None:
        assert self._journal is not None  # set to None only once the queue is drained
        try:
            self._journal.append(b"".join(group.lines for group in batch), sync=self.durable)
        except OSError as exc:
            error = BackendError(f"prediction log journal {self._journal.path} failed: {exc}")
            _log.error("%s", error)
            for group in batch:
                if not group.future.done():
                    group.future.set_exception(error)
            with self._cond:
                self._done += len(batch)
                self._written.notify_all()
            return
        rows = sum(len(group.records) for group in batch)
        with self._cond:
            for group in batch:
                self._live.extend(group.records)
            self._unsealed += rows
            self._count(records=rows, groups=1, fsyncs=int(self.durable))
            self._done += len(batch)
            self._written.notify_all()
        for group in batch:
            if not group.future.done():
                group.future.set_result([r.prediction_id for r in group.records])

    def _count(self, **increments: int) -> None:
        """Add to the counters (called with the lock held: two threads update them)."""
        for name, value in increments.items():
            self._counts[name] += value

    def _seal(self, *, last: bool) -> None:
        """Hand the current journal to the segmenter and go on in a new one (none when
        ``last``: the log is closing)."""
        self._last_seal = time.monotonic()
        fresh = None
        if not last:
            with self._cond:
                fresh, self._spare = self._spare, None
            try:  # the spare's folder fsync is done already: none on the commit path
                fresh = fresh or Journal(self._folder)
            except OSError as exc:  # keep appending to the current one; try again later
                _log.warning("prediction log: a new journal failed, will retry: %s", exc)
                return
        assert self._journal is not None
        with self._cond:
            self._sealed.append(_Sealed(self._journal, self._unsealed))
            self._unsealed = 0
            self._journal = fresh
            self._sealing.notify()

    def _segment_sealed(self) -> None:
        """The segmenter thread: sealed journals become segments, oldest first. One that
        fails is retried after a pause; at close it is left for the next log to recover."""
        while True:
            self._open_spare()
            with self._cond:
                while not self._sealed and not self._writer_done:
                    self._sealing.wait()
                if not self._sealed:
                    return
                sealed, closing = self._sealed[0], self._writer_done
                live = self._live[: sealed.count]
            if self._write_sealed(sealed, live):
                with self._cond:
                    self._sealed.pop(0)
                    del self._live[: sealed.count]
            elif closing:
                return
            else:  # pause before trying again; close() ends the pause
                with self._cond:
                    self._sealing.wait_for(lambda: self._writer_done, self.segment_interval_s)

    def _open_spare(self) -> None:
        with self._cond:
            if self._spare is not None or self._closing:
                return
        try:
            spare: Journal | None = Journal(self._folder)
        except OSError as exc:  # the writer opens one itself when it needs it
            _log.warning("prediction log: opening the next journal failed: %s", exc)
            return
        with self._cond:
            if self._spare is None and not self._closing:
                self._spare, spare = spare, None
        if spare is not None:
            spare.remove()

    def _write_sealed(self, sealed: _Sealed, live: list[PredictionRecord]) -> bool:
        try:
            if not self.durable:
                sealed.journal.sync()
                with self._cond:
                    self._count(fsyncs=1)
            self._write_segments(live)
        except Exception as exc:  # whatever it is, this thread must live: retried later
            _log.warning("prediction log: writing a segment failed, will retry: %r", exc)
            return False
        # A crash before the delete leaves the journal to recovery, which finds its
        # segments already recorded (same records, same digest) and records nothing twice.
        try:
            sealed.journal.remove()
        except OSError as exc:  # its records are in segments; recovery deletes it later
            _log.warning("prediction log: deleting %s failed: %s", sealed.journal.path, exc)
        return True

    def _write_segments(self, records: list[PredictionRecord]) -> None:
        added = write_segments(self._artifacts, self._store, records, self._segment_rows)
        with self._cond:
            self._count(segments=added)

    def _recover(self, own: Path) -> None:
        for path, fd in orphaned_journals(self._folder, own):
            records, dropped = read_journal(fd)
            if records:
                self._write_segments(records)
            path.unlink()
            self._count(recovered=len(records), dropped_lines=dropped)
            _log.info("prediction log: recovered %d records from %s", len(records), path.name)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything appended so far is journaled (and fsynced if durable).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        with self._cond:
            target = self._enqueued
            self._cond.notify()  # a non-durable writer may be waiting for a fuller batch
            if not self._written.wait_for(lambda: self._done >= target, timeout):
                raise TimeoutError("prediction log flush timed out")

    def close(self) -> None:
        """Write everything to segments, delete the journals, stop both threads."""
        with self._cond:
            if self._closed:
                return
            self._closing = self._closed = True
            self._cond.notify_all()
            self._sealing.notify()
        self._thread.join()
        self._segmenter.join()
        for sealed in self._sealed:  # segments failed: they stay, for the next log to open
            sealed.journal.release()
        for empty in (self._journal, self._spare):  # nothing left to seal, or never used
            if empty is not None:
                empty.remove()
        self._store.close()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def stats(self) -> PredictionLogStats:
        """A snapshot of the counters."""
        return PredictionLogStats(**self._counts)

    # -- reading -------------------------------------------------------------------

    def _live_records(self, deployment: str | None = None) -> list[PredictionRecord]:
        with self._cond:
            live = list(self._live)
        return [r for r in live if deployment is None or r.deployment == deployment]

    def live_deployments(self, prediction_ids: Collection[str]) -> dict[str, str]:
        """``{prediction_id: deployment}`` for those of ``prediction_ids`` that are live
        records of this process (journaled, not yet in a segment): one pass over them,
        however many ids are asked for."""
        wanted = (
            prediction_ids if isinstance(prediction_ids, set | frozenset) else set(prediction_ids)
        )
        return {
            r.prediction_id: r.deployment for r in self._live_records() if r.prediction_id in wanted
        }

    def find(self, prediction_id: str) -> PredictionRecord | None:
        """The record with ``prediction_id``, from this process's live records or the
        segments whose id range covers it; None when it is not logged."""
        for record in self._live_records():
            if record.prediction_id == prediction_id:
                return record
        return find_in_segments(self._artifacts, self._store, prediction_id)

    def tail(self, deployment: str, n: int = 20) -> list[PredictionRecord]:
        """The ``n`` newest records of ``deployment``, newest first."""
        return tail(self._artifacts, self._store, deployment, self._live_records(deployment), n)

    def scan(self, deployment: str, since_ms: int | None = None) -> pa.Table:
        """All records of ``deployment`` (from ``since_ms`` on) as an Arrow table in
        ``SEGMENT_SCHEMA``, ordered by time; ``inputs``/``output`` are JSON text."""
        # Live records first: a cut moves records from live to a segment only after the
        # segment is recorded, so what leaves live meanwhile is in the segments read next.
        live = table_of(self._live_records(deployment))
        query = sa.select(_SEGS.c.digest).where(_SEGS.c.deployment == deployment)
        if since_ms is not None:
            query = query.where(_SEGS.c.last_ts_ms >= since_ms)
        with self._store.read() as conn:
            digests = list(conn.scalars(query))
        tables = [table_from_bytes(self._artifacts.get_bytes(d)) for d in digests]
        if tables and live.num_rows:  # a cut in between shows its records twice
            ids = pa.concat_tables(tables)["prediction_id"]
            cut = ids.filter(pc.is_in(ids, value_set=live["prediction_id"]))
            live = live.filter(pc.invert(pc.is_in(live["prediction_id"], value_set=cut)))
        tables.append(live)
        table = pa.concat_tables(tables)
        if since_ms is not None:
            table = table.filter(pc.greater_equal(table["ts_ms"], since_ms))
        return table.sort_by([("ts_ms", "ascending"), ("prediction_id", "ascending")])
