"""Buffered tracking writes: calls append to memory, a flush writes one transaction.

This is why logging is cheap: ``log_metric`` costs a list append. Pending writes
reach the database when a run ends, when :meth:`WriteBuffer.flush` is called, every
``flush_interval_s`` seconds from a background thread, and at interpreter exit.
A hard crash (SIGKILL, power loss, ``os._exit``) loses what was logged since the
last flush: at most ``flush_interval_s`` seconds of metrics, params and tags.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass, field

from sqlalchemy import Connection

from loopml.store import MetadataStore

__all__ = ["Pending", "WriteBuffer"]

MetricRow = tuple[str, str, float, int, int]  # run_id, key, value, step, timestamp_ms
# id, experiment_id, name, status, start_ms, end_ms, parent_id
RunRow = tuple[str, str, str, str, int, int | None, str | None]


@dataclass(slots=True)
class Pending:
    """Writes not yet in the database."""

    runs: list[RunRow] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    params: dict[tuple[str, str], str] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    finished: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs or self.metrics or self.params or self.tags or self.finished)

    def extend(self, later: Pending) -> None:
        """Append writes that were queued after these."""
        self.runs.extend(later.runs)
        self.metrics.extend(later.metrics)
        self.params.update(later.params)
        self.tags.update(later.tags)
        self.finished.update(later.finished)


# The flush is the hot path of tracking, so it speaks plain SQL through the DB-API
# cursor: SQLAlchemy's per-statement overhead was half the cost of ending a run.
# The statements are the same on SQLite and PostgreSQL but for the placeholder.
_SQL = {
    "runs": "INSERT INTO runs"
    " (id, experiment_id, name, status, start_ms, end_ms, parent_id, summary)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "params": "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id, key) DO NOTHING",
    "tags": "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    "metrics": "INSERT INTO metrics (run_id, key, value, step, timestamp_ms)"
    " VALUES (?, ?, ?, ?, ?)",
    # Keep the point with the highest (step, timestamp), whatever order batches arrive in.
    "latest": "INSERT INTO latest_metrics (run_id, key, value, step, timestamp_ms)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
    " step = excluded.step, timestamp_ms = excluded.timestamp_ms"
    " WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step"
    " AND excluded.timestamp_ms >= latest_metrics.timestamp_ms)",
    "finish": "UPDATE runs SET status = ?, end_ms = ?, summary = ? WHERE id = ?",
}
_SQL_PYFORMAT = {name: sql.replace("?", "%s") for name, sql in _SQL.items()}


def write_pending(conn: Connection, pending: Pending) -> None:
    """Write ``pending`` inside the caller's transaction, parents before children."""
    sql = _SQL if conn.dialect.paramstyle == "qmark" else _SQL_PYFORMAT
    finished = dict(pending.finished)
    cursor = conn.connection.cursor()
    try:
        if pending.runs:
            rows = []
            for run in pending.runs:
                # A run that starts and ends within one flush is written once, finished.
                status, end_ms, summary = finished.pop(run[0], (run[3], run[5], None))
                rows.append((*run[:3], status, run[4], end_ms, run[6], summary))
            cursor.executemany(sql["runs"], rows)
        if pending.params:
            cursor.executemany(sql["params"], [(r, k, v) for (r, k), v in pending.params.items()])
        if pending.tags:
            cursor.executemany(sql["tags"], [(r, k, v) for (r, k), v in pending.tags.items()])
        if pending.metrics:
            # NaN is stored as NULL (SQLite has no NaN); readers turn it back into NaN.
            metrics = [r if r[2] == r[2] else (*r[:2], None, *r[3:]) for r in pending.metrics]
            cursor.executemany(sql["metrics"], metrics)
            latest: dict[tuple[str, str], tuple[object, ...]] = {}
            for row in metrics:
                seen = latest.get((row[0], row[1]))
                if seen is None or (row[3], row[4]) >= (seen[3], seen[4]):
                    latest[(row[0], row[1])] = row
            cursor.executemany(sql["latest"], list(latest.values()))
        if finished:
            cursor.executemany(sql["finish"], [(*done, r) for r, done in finished.items()])
    finally:
        cursor.close()


class WriteBuffer:
    """Pending tracking writes of one process for one store, flushed in batches."""

    def __init__(self, store: MetadataStore, flush_interval_s: float) -> None:
        self._store = store
        self._interval = flush_interval_s
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending = Pending()
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        _LIVE_BUFFERS.add(self)

    def add_run(self, row: RunRow) -> None:
        with self._lock:
            self._pending.runs.append(row)

    def add_finish(self, run_id: str, status: str, end_ms: int, summary: str) -> None:
        with self._lock:
            self._pending.finished[run_id] = (status, end_ms, summary)

    def add_metric(self, row: MetricRow) -> None:
        with self._lock:
            self._pending.metrics.append(row)
        if self._flusher is None:
            self._start_flusher()

    def add_params(self, run_id: str, values: dict[str, str]) -> None:
        with self._lock:
            for key, value in values.items():
                self._pending.params[(run_id, key)] = value
        if self._flusher is None:
            self._start_flusher()

    def add_tags(self, run_id: str, values: dict[str, str]) -> None:
        with self._lock:
            for key, value in values.items():
                self._pending.tags[(run_id, key)] = value
        if self._flusher is None:
            self._start_flusher()

    def take(self) -> Pending:
        """Remove and return everything pending (for a caller that writes it itself)."""
        with self._lock:
            pending, self._pending = self._pending, Pending()
        return pending

    def flush(self) -> None:
        """Write everything pending in one transaction; on failure it stays pending."""
        with self._flush_lock:  # keeps batches in order when two threads flush at once
            pending = self.take()
            if not pending:
                return
            try:
                self._store.transact(lambda conn: write_pending(conn, pending))
            except BaseException:
                self.restore(pending)
                raise

    def restore(self, pending: Pending) -> None:
        """Put writes back in front of the queue after a failed write."""
        with self._lock:
            pending.extend(self._pending)
            self._pending = pending

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="loopml-flush", daemon=True
            )
        self._flusher.start()

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.flush()
            except Exception as exc:  # kept pending: the next flush or the run's end retries
                _log.warning("loopml: background flush failed, will retry: %s", exc)

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._closed.set()
        self.flush()


_log = logging.getLogger("loopml.tracking")
_LIVE_BUFFERS: weakref.WeakSet[WriteBuffer] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for buffer in list(_LIVE_BUFFERS):
        try:
            buffer.close()
        except Exception as exc:  # the interpreter is going away; say what was lost
            _log.error("loopml: final flush failed; unflushed tracking data is lost: %s", exc)
