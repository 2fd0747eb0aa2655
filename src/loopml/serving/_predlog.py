"""The durable prediction log: group commit to a journal, segments in the artifact store.

``append`` queues a record; one writer thread takes everything queued, writes it to this
process's journal with one ``write`` and one ``fsync`` (group commit), then resolves the
futures. Every ``segment_rows`` records or ``segment_interval_s`` seconds, and on close,
the journaled records become Arrow IPC segments (one per deployment) in the artifact
store, indexed in ``prediction_segments``; only then is the journal emptied.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.artifacts import ArtifactStore
from loopml.core import BackendError, Settings, ValidationError, now_ms
from loopml.serving._predlog_journal import Journal, orphaned_journals, read_journal
from loopml.serving._predlog_record import (
    PredictionRecord,
    encode_line,
    records_from_table,
    segment_bytes,
    table_from_bytes,
    table_of,
)
from loopml.store import open_store, schema

__all__ = ["PredictionLog", "PredictionLogStats"]

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


_Item = tuple[PredictionRecord, bytes, "Future[str]"]


class PredictionLog:
    """Append-only log of predictions; see the module docstring and docs/serving.md.

    Args:
        durable: resolve an append's future only once its record is fsynced (the
            default); when False, once it is queued (a SIGKILL still loses nothing the
            writer had written, a machine crash may lose the last moments).
        flush_interval_ms: the longest a queued record waits for the writer.
        max_batch: the most records one group commit writes.
        segment_rows / segment_interval_s: when journaled records become a segment.

    Raises (from the constructor):
        BackendError: the journal folder, the artifact store or the database fails.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        durable: bool = True,
        flush_interval_ms: float = 5,
        max_batch: int = 1000,
        segment_rows: int = 10_000,
        segment_interval_s: float = 2.0,
    ) -> None:
        if max_batch < 1 or segment_rows < 1 or flush_interval_ms <= 0:
            raise ValidationError("max_batch and segment_rows must be >= 1, flush interval > 0")
        self.durable = durable
        self._interval = flush_interval_ms / 1000
        self._max_batch = max_batch
        self._segment_rows = segment_rows
        self._segment_interval = segment_interval_s
        self._folder = settings.home / "predlog"
        self._artifacts = ArtifactStore(settings.artifacts_url)
        self._store = open_store(settings.db_url)
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self._live: list[PredictionRecord] = []  # journaled, not yet in a segment
        self._closing = False
        self._closed = False
        self._counts = dict.fromkeys(PredictionLogStats.__dataclass_fields__, 0)
        try:
            self._journal = Journal(self._folder)
            self._recover()
        except OSError as exc:
            self._store.close()
            raise BackendError(f"prediction log in {self._folder} failed to open: {exc}") from exc
        self._last_cut = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="loopml-predlog", daemon=True)
        self._thread.start()

    # -- writing -------------------------------------------------------------------

    def append(self, record: PredictionRecord) -> Future[str]:
        """Queue ``record``; the future gives its prediction id once durable (or queued).

        Raises:
            ValidationError: the record is not JSON-serializable.
            BackendError: the log is closed.
        """
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[PredictionRecord]) -> list[Future[str]]:
        """:meth:`append` for several records, queued together."""
        items: list[_Item] = [(r, encode_line(r), Future()) for r in records]
        for record, _, future in items:
            future.set_running_or_notify_cancel()
            if not self.durable:
                # Resolved before the writer can see it: once queued, the writer may
                # resolve it first, and a future resolves only once.
                future.set_result(record.prediction_id)
        with self._cond:
            if self._closing:
                raise BackendError("the prediction log is closed")
            self._queue.extend(items)
            if self.durable or len(self._queue) >= self._max_batch:
                self._cond.notify()
        return [future for _, _, future in items]

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(self._interval if self._live else self._segment_interval)
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                done = self._closing and not self._queue
            if batch:
                self._commit(batch)
            if done:
                self._cut()
                return
            due = time.monotonic() - self._last_cut >= self._segment_interval
            if len(self._live) >= self._segment_rows or (self._live and due):
                self._cut()

    def _commit(self, batch: list[_Item]) -> None:
        try:
            self._journal.append(b"".join(line for _, line, _ in batch), sync=self.durable)
        except OSError as exc:
            error = BackendError(f"prediction log journal {self._journal.path} failed: {exc}")
            _log.error("%s", error)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        with self._cond:
            self._live.extend(record for record, _, _ in batch)
        self._counts["records"] += len(batch)
        self._counts["groups"] += 1
        self._counts["fsyncs"] += int(self.durable)
        for record, _, future in batch:
            if not future.done():
                future.set_result(record.prediction_id)

    def _cut(self) -> None:
        """Turn the live records into segments, then empty the journal."""
        self._last_cut = time.monotonic()
        with self._cond:
            live = list(self._live)
        if not live:
            return
        try:
            if not self.durable:
                self._journal.sync()
                self._counts["fsyncs"] += 1
            self._write_segments(live)
            with self._cond:
                del self._live[: len(live)]
            self._journal.reset()
            self._counts["fsyncs"] += 1
        except (OSError, BackendError) as exc:  # the journal keeps them; retried next time
            _log.warning("prediction log: writing a segment failed, will retry: %s", exc)

    def _write_segments(self, records: list[PredictionRecord]) -> None:
        by_deployment: dict[str, list[PredictionRecord]] = {}
        for record in records:
            by_deployment.setdefault(record.deployment, []).append(record)
        rows: list[dict[str, Any]] = []
        with self._artifacts.batch():  # every blob is on disk before a row names it
            for deployment, group in sorted(by_deployment.items()):
                for start in range(0, len(group), self._segment_rows):
                    part = group[start : start + self._segment_rows]
                    info = self._artifacts.put_bytes(segment_bytes(part))
                    ids = [r.prediction_id for r in part]
                    stamps = [r.ts_ms for r in part]
                    rows.append(
                        {
                            "digest": info.digest,
                            "deployment": deployment,
                            "first_ts_ms": min(stamps),
                            "last_ts_ms": max(stamps),
                            "first_id": min(ids),
                            "last_id": max(ids),
                            "rows": len(part),
                            "created_ms": now_ms(),
                        }
                    )

        def insert(conn: sa.Connection) -> int:
            digests = [row["digest"] for row in rows]
            known = set(conn.scalars(sa.select(_SEGS.c.digest).where(_SEGS.c.digest.in_(digests))))
            new = [row for row in rows if row["digest"] not in known]
            if new:
                conn.execute(_SEGS.insert(), new)
            return len(new)

        self._counts["segments"] += self._store.transact(insert)

    def _recover(self) -> None:
        for path, fd in orphaned_journals(self._folder, self._journal.path):
            records, dropped = read_journal(fd)
            if records:
                self._write_segments(records)
            path.unlink()
            self._counts["recovered"] += len(records)
            self._counts["dropped_lines"] += dropped
            _log.info("prediction log: recovered %d records from %s", len(records), path.name)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything appended so far is journaled (and fsynced if durable)."""
        with self._cond:
            pending = [future for _, _, future in self._queue]
            self._cond.notify()
        for future in pending:
            future.exception(timeout)
        if not self.durable:  # non-durable futures resolve early: wait for the queue
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                with self._cond:
                    if not self._queue:
                        break
                    self._cond.notify()
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("prediction log flush timed out")
                time.sleep(self._interval / 2)

    def close(self) -> None:
        """Write everything to segments, delete the journal, stop the writer."""
        with self._cond:
            if self._closed:
                return
            self._closing = self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._live:
            self._journal.release()  # it stays, recovered by the next log to open
        else:
            self._journal.remove()
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

    def _segment(self, digest: str) -> pa.Table:
        return table_from_bytes(self._artifacts.get_bytes(digest))

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
        query = sa.select(_SEGS.c.digest).where(
            _SEGS.c.first_id <= prediction_id, _SEGS.c.last_id >= prediction_id
        )
        with self._store.read() as conn:
            digests = list(conn.scalars(query))
        for digest in digests:
            table = self._segment(digest)
            hit = table.filter(pc.equal(table["prediction_id"], prediction_id))
            if hit.num_rows:
                return records_from_table(hit.slice(0, 1))[0]
        return None

    def tail(self, deployment: str, n: int = 20) -> list[PredictionRecord]:
        """The ``n`` newest records of ``deployment``, newest first."""
        found = self._live_records(deployment)
        query = (
            sa.select(_SEGS.c.digest, _SEGS.c.last_ts_ms)
            .where(_SEGS.c.deployment == deployment)
            .order_by(_SEGS.c.last_ts_ms.desc())
        )
        with self._store.read() as conn:
            segments = list(conn.execute(query))
        for digest, last_ts in segments:  # newest segments first
            found.sort(key=lambda r: (r.ts_ms, r.prediction_id), reverse=True)
            if len(found) >= n and found[n - 1].ts_ms > last_ts:
                break  # this segment and all older ones hold nothing newer
            found.extend(records_from_table(self._segment(digest)))
        unique = {r.prediction_id: r for r in found}  # a cut in progress shows both copies
        return sorted(unique.values(), key=lambda r: (r.ts_ms, r.prediction_id), reverse=True)[:n]

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
        tables = [self._segment(d) for d in digests]
        if tables and live.num_rows:  # a cut in between shows its records twice
            ids = pa.concat_tables(tables)["prediction_id"]
            cut = ids.filter(pc.is_in(ids, value_set=live["prediction_id"]))
            live = live.filter(pc.invert(pc.is_in(live["prediction_id"], value_set=cut)))
        tables.append(live)
        table = pa.concat_tables(tables)
        if since_ms is not None:
            table = table.filter(pc.greater_equal(table["ts_ms"], since_ms))
        return table.sort_by([("ts_ms", "ascending"), ("prediction_id", "ascending")])
