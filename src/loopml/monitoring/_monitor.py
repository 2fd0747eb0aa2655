"""The monitor service: incremental passes over a deployment's prediction log and
feedback, and the reports built from the windows they keep up to date."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.core import Settings, ValidationError, now_ms
from loopml.governance import (
    Identity,
    StoreService,
    append_audit,
    require,
    resolve_identity,
)
from loopml.monitoring._build import build_report, choose_references
from loopml.monitoring._ingest import ingest_segment, read_segment, unread_segments
from loopml.monitoring._labels import LABEL_OVERLAP_MS, match_labels
from loopml.monitoring._performance import merge_labels, performance
from loopml.monitoring._report import MonitorReport
from loopml.monitoring._state import (
    Conflict,
    MonitorState,
    commit_pass,
    load_state,
    load_window,
)
from loopml.monitoring._versions import VersionCache
from loopml.monitoring._window_state import WindowState
from loopml.monitoring._windows import DEFAULT_WINDOW, WindowSpec, parse_window
from loopml.store import schema

__all__ = ["DEFAULT_HISTORY", "Monitor", "PassStats"]

ACTION = "monitor.run"
DEFAULT_HISTORY = 48  # windows in a report
SEGMENTS_PER_COMMIT = 32  # a long backlog is committed in steps, so a crash keeps most
_ATTEMPTS = 5
R = schema.monitor_reports

Progress = Callable[[int, int], None]


@dataclass
class PassStats:
    """What one pass read: log rows and segments, and labels."""

    rows_read: int = 0
    segments_read: int = 0
    labels_read: int = 0
    labels_unmatched: int = 0


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class Monitor(StoreService):
    """Monitoring of deployments in the store ``settings`` names.

    :meth:`report` runs a pass (it needs ``monitor.run``, contributor and up, and is
    audited) and stores the report; :meth:`latest` and :meth:`history` read stored ones.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        identity: Identity | None = None,
        create_store: bool = True,
    ) -> None:
        super().__init__(settings, identity=identity, create_store=create_store)
        # Per monitor state: the labels ({id: ts_ms}) this object's committed passes
        # applied within the overlap the next pass reads again, so none is matched twice.
        self._applied: dict[str, dict[int, int]] = {}

    def report(
        self,
        deployment: str,
        window: str = DEFAULT_WINDOW,
        *,
        history: int = DEFAULT_HISTORY,
        progress: Progress | None = None,
    ) -> MonitorReport:
        """Bring ``deployment``'s ``window`` windows up to date and report the ``history``
        newest ones (the last is the current window).

        Raises:
            ValidationError: a bad window spec or history.
            NotFoundError: no such deployment.
            PermissionDeniedError: the caller may not run monitoring.
        """
        spec = parse_window(window)
        if history < 1:
            raise ValidationError(f"history must be at least 1 window (got {history})")
        identity = require(self.settings, self.store, ACTION)
        self._check_deployment(deployment)
        versions = VersionCache(self.settings)
        stats, state = self._advance(deployment, spec, versions, progress)
        report = build_report(self.store, state, spec, versions, history, stats)

        def work(conn: sa.Connection) -> None:
            conn.execute(
                R.insert().values(
                    id=report.id,
                    deployment=deployment,
                    window_spec=spec.text,
                    created_ms=report.created_ms,
                    report=report.to_json(),
                )
            )
            append_audit(
                conn,
                actor=identity.name,
                action=ACTION,
                target=f"deployment:{deployment}",
                after={
                    "report": report.id,
                    "window": spec.text,
                    "rows_read": stats.rows_read,
                    "labels_read": stats.labels_read,
                },
            )

        self.store.transact(work)
        return report

    def latest(self, deployment: str, window: str | None = None) -> MonitorReport | None:
        """The newest stored report of ``deployment`` (of that window spec if given)."""
        found = self.history(deployment, window=window, limit=1)
        return found[0] if found else None

    def history(
        self, deployment: str, *, window: str | None = None, limit: int = 20
    ) -> list[MonitorReport]:
        """Stored reports of ``deployment``, newest first."""
        resolve_identity(self.settings, self.store)  # with auth on, a valid token
        query = sa.select(R.c.report).where(R.c.deployment == deployment)
        if window is not None:
            query = query.where(R.c.window_spec == parse_window(window).text)
        query = query.order_by(R.c.created_ms.desc(), R.c.id.desc()).limit(max(1, limit))
        with self.store.read() as conn:
            texts = list(conn.scalars(query))
        return [MonitorReport.from_dict(json.loads(text)) for text in texts]

    # -- the pass -------------------------------------------------------------------

    def _check_deployment(self, deployment: str) -> None:
        from loopml.serving import Deployments

        with Deployments(self.settings, identity=self._identity) as deployments:
            deployments.get(deployment)  # NotFoundError names it

    def _advance(
        self,
        deployment: str,
        spec: WindowSpec,
        versions: VersionCache,
        progress: Progress | None,
    ) -> tuple[PassStats, MonitorState]:
        stats = PassStats()  # counts only work that was committed
        for attempt in range(_ATTEMPTS):
            try:
                state = load_state(self.store, deployment, spec.text)
                self._read_log(state, spec, versions, stats, progress)
                choose_references(self.store, state, spec, versions.seen)
                self._read_labels(state, versions, stats)
                return stats, state
            except Conflict:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _window_getter(
        self, state: MonitorState, spec: WindowSpec, cache: dict[int, WindowState]
    ) -> Callable[[int], WindowState]:
        def window(index: int) -> WindowState:
            if index not in cache:
                found = load_window(self.store, state.id, index)
                if found is None:
                    if spec.by_time:
                        start, end = spec.bounds(index)
                    else:
                        start, end = 2**62, -(2**62)  # set by the rows it gets
                    found = WindowState(index=index, start_ms=start, end_ms=end)
                cache[index] = found
            return cache[index]

        return window

    def _read_log(
        self,
        state: MonitorState,
        spec: WindowSpec,
        versions: VersionCache,
        stats: PassStats,
        progress: Progress | None,
    ) -> None:
        with self.store.read() as conn:
            segments = unread_segments(conn, state.deployment, state.id)
        if progress is not None:
            progress(0, len(segments))
        for start in range(0, len(segments), SEGMENTS_PER_COMMIT):
            cache: dict[int, WindowState] = {}
            window = self._window_getter(state, spec, cache)
            rows: list[dict[str, object]] = []
            read = 0
            with self.artifacts.batch():
                for segment in segments[start : start + SEGMENTS_PER_COMMIT]:
                    table = read_segment(self.artifacts.get_bytes(segment.digest))
                    index = ingest_segment(table, spec, state.rows, window, versions)
                    state.rows += table.num_rows
                    state.segments += 1
                    if table.num_rows:
                        newest = int(pc.max(table["ts_ms"]).as_py())
                        state.last_ts_ms = max(state.last_ts_ms or newest, newest)
                    read += table.num_rows
                    digest = self.artifacts.put_bytes(_ipc_bytes(index)).digest
                    rows.append(
                        {
                            "digest": segment.digest,
                            "first_id": segment.first_id,
                            "last_id": segment.last_id,
                            "rows": table.num_rows,
                            "index_digest": digest,
                            "created_ms": now_ms(),
                        }
                    )
            commit_pass(self.store, state, cache.values(), rows)
            stats.rows_read += read
            stats.segments_read += len(rows)
            if progress is not None:
                progress(stats.segments_read, len(segments))

    def _read_labels(self, state: MonitorState, versions: VersionCache, stats: PassStats) -> None:
        from loopml.serving import Feedback

        since = None if state.labels_ms is None else state.labels_ms - LABEL_OVERLAP_MS
        applied = self._applied.get(state.id, {})
        with Feedback(self.settings, identity=self._identity) as feedback:
            start = since
            if since is not None and state.labels_ms is not None and applied:
                # The overlap holds only labels applied already: read from the watermark.
                known = [i for i, ts in applied.items() if since <= ts < state.labels_ms]
                stored = feedback.count_labels(state.deployment, since, state.labels_ms)
                if stored == (len(known), sum(known)):
                    start = state.labels_ms
            labels = feedback.labels(state.deployment, since_ms=start)
        matched = match_labels(
            self.store, self.artifacts, state.id, labels, state.labels_ms, now_ms(), applied
        )
        touched: list[WindowState] = []
        with self.artifacts.batch():
            for index, rows in sorted(matched.by_window.items()):
                window = load_window(self.store, state.id, index)
                if window is None:  # pragma: no cover - the index names only stored windows
                    continue
                existing = None
                if window.labels_digest is not None:
                    data = self.artifacts.get_bytes(window.labels_digest)
                    existing = pa.ipc.open_file(pa.BufferReader(data)).read_all()
                table = merge_labels(existing, rows)
                window.labels_digest = self.artifacts.put_bytes(_ipc_bytes(table)).digest
                window.performance = performance(table, versions)
                touched.append(window)
        state.labels_ms = matched.labels_ms
        commit_pass(self.store, state, touched, [])
        # Committed: remember what the next pass will read again (from the new watermark
        # less the overlap), forget what it will not.
        floor = None if state.labels_ms is None else state.labels_ms - LABEL_OVERLAP_MS
        self._applied[state.id] = {
            i: ts
            for i, ts in (*applied.items(), *matched.applied.items())
            if floor is None or ts >= floor
        }
        stats.labels_read = len(labels)
        stats.labels_unmatched = matched.unmatched
