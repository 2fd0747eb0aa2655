"""The tracking client: starts runs and reads them back.

One :class:`Client` per store and process is enough; :func:`start_run` and
:meth:`Client.default` share one per :class:`~loopml.core.Settings`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import select

from loopml.artifacts import ArtifactStore, safe_join, safe_relative_path
from loopml.core import (
    ArtifactRef,
    Experiment,
    MetricPoint,
    NotFoundError,
    Run,
    RunStatus,
    Settings,
    ValidationError,
    capture_environment,
    load_settings,
    new_id,
    now_ms,
)
from loopml.governance import Identity, authorize, resolve_identity
from loopml.store import MetadataStore, open_store, schema
from loopml.tracking import _repo
from loopml.tracking._buffer import WriteBuffer
from loopml.tracking._run import ActiveRun
from loopml.tracking._search import decode_page_token, encode_page_token, parse_filter, search_query
from loopml.tracking._system import SystemSampler, sample_system
from loopml.tracking._validate import check_name

__all__ = ["Client", "RunPage", "start_run"]

_defaults: dict[Settings, Client] = {}
_defaults_lock = threading.Lock()


class RunPage(list[Run]):
    """A page of search results; ``next_page_token`` fetches the next one (None at the end)."""

    next_page_token: str | None = None


class Client:
    """Start, search and read runs in the store that ``settings`` names.

    Args:
        settings: where the store lives; by default :func:`~loopml.core.load_settings`
            from the environment and ``loopml.toml``.
        create_store: create and migrate the store on first use (the default); when
            False, a missing store raises NotFoundError, as read-only tools want.
    """

    def __init__(self, settings: Settings | None = None, *, create_store: bool = True) -> None:
        self.settings = settings or load_settings()
        self._create_store = create_store
        self._lock = threading.Lock()
        self._store: MetadataStore | None = None
        self._buffer: WriteBuffer | None = None
        self._experiments: dict[str, Experiment] = {}
        self._open_runs: dict[str, ActiveRun] = {}
        self._identity: Identity | None = None
        self._sampler = SystemSampler(self.settings.system_metrics_interval_s)

    @classmethod
    def default(cls, settings: Settings | None = None) -> Client:
        """The shared client for ``settings`` (loaded from the environment if None)."""
        resolved = settings or load_settings()
        with _defaults_lock:
            client = _defaults.get(resolved)
            if client is None:
                client = _defaults[resolved] = cls(resolved)
            return client

    # -- stores -------------------------------------------------------------------

    @property
    def store(self) -> MetadataStore:
        """The metadata store, opened (and migrated) on first use."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.settings.db_url, create=self._create_store)
        return self._store

    @cached_property
    def artifact_store(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        return ArtifactStore(self.settings.artifacts_url)

    def _buffer_for_runs(self) -> WriteBuffer:
        if self._buffer is None:
            with self._lock:
                if self._buffer is None:
                    self._buffer = WriteBuffer(self.store, self.settings.flush_interval_s)
        return self._buffer

    def flush(self) -> None:
        """Write every buffered metric, param and tag of this client's runs now."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """End open runs as FINISHED, flush, and release the database."""
        for run in list(self._open_runs.values()):
            run.end()
        if self._buffer is not None:
            self._buffer.close()
        if self._store is not None:
            self._store.close()

    # -- writing ------------------------------------------------------------------

    def experiment(self, name: str) -> Experiment:
        """Return the experiment called ``name``, creating it if needed."""
        cached = self._experiments.get(name)
        if cached is None:
            check_name("experiment name", name)
            cached = self.store.transact(lambda c: _repo.get_or_create_experiment(c, name))
            self._experiments[name] = cached
        return cached

    def start_run(
        self,
        experiment: str = "default",
        *,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent: ActiveRun | str | None = None,
    ) -> ActiveRun:
        """Open a run in ``experiment``; use the result as a context manager.

        Captures the git commit (and a digest of uncommitted changes), Python and
        key package versions, host and command line as ``loopml.*`` tags, and
        samples system metrics while the run is open unless turned off in settings.
        """
        self._authorize("run.create")
        found = self.experiment(experiment)
        run_id = new_id()
        run_name = name or f"run-{run_id[:8]}"
        check_name("run name", run_name)
        parent_id = parent.id if isinstance(parent, ActiveRun) else parent
        buffer = self._buffer_for_runs()
        buffer.add_run(
            (run_id, found.id, run_name, RunStatus.RUNNING.value, now_ms(), None, parent_id)
        )
        run = ActiveRun(
            self,
            run_id=run_id,
            name=run_name,
            experiment=found.name,
            experiment_id=found.id,
            parent_id=parent_id,
        )
        run.set_tags(capture_environment(self.settings.project_dir))
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        self._open_runs[run_id] = run
        if self.settings.system_metrics:
            self._sampler.register(run_id, run._log_system)
        return run

    def _authorize(self, action: str) -> None:
        """Check the caller's role; the identity is resolved once per client."""
        if self._identity is None:
            self._identity = resolve_identity(self.settings, self.store)
        authorize(self._identity, action)

    def _finish(self, run: ActiveRun) -> None:
        self._sampler.unregister(run.id)
        self._open_runs.pop(run.id, None)

    @staticmethod
    def _sample_system() -> dict[str, float]:
        return sample_system()

    def _record_artifacts(self, run: ActiveRun, refs: list[ArtifactRef]) -> None:
        self.flush()  # the run row must exist before rows that point at it
        self.store.transact(lambda c: _repo.record_artifacts(c, run.id, refs))

    # -- reading ------------------------------------------------------------------

    def list_experiments(self) -> list[tuple[Experiment, int, int | None]]:
        """Every experiment with its run count and the start time of its newest run."""
        self.flush()
        with self.store.read() as conn:
            return _repo.list_experiments(conn)

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``; NotFoundError if there is none."""
        with self.store.read() as conn:
            return _repo.find_experiment(conn, name)

    def get_run(self, run_id: str) -> Run:
        """The run with ``run_id`` (or a unique prefix of 6+ characters), params, tags, metrics."""
        self.flush()
        with self.store.read() as conn:
            return _repo.get_run(conn, run_id)

    def search_runs(
        self,
        experiment: str | Iterable[str] | None = None,
        *,
        filter: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> RunPage:
        """Runs of one or more experiments (all when None) matching ``filter``.

        Args:
            experiment: a name, several names, or None for every experiment.
            filter: e.g. ``"metrics.acc > 0.9 and params.model = 'rf'"``.
            order_by: e.g. ``["metrics.acc DESC"]``; ties go newest first.
            max_results: page size, 1 to 50,000.
            page_token: ``next_page_token`` of the previous page.
        """
        if not 1 <= max_results <= 50_000:
            raise ValidationError(f"max_results must be between 1 and 50000; got {max_results}")
        clauses = parse_filter(filter)
        offset = decode_page_token(page_token)
        self.flush()
        with self.store.read() as conn:
            experiment_ids = self._experiment_ids(conn, experiment)
            query = search_query(experiment_ids, clauses, order_by)
            rows = conn.execute(query.limit(max_results + 1).offset(offset)).all()
            page = RunPage(_repo.runs_from_rows(conn, rows[:max_results]))
        if len(rows) > max_results:
            page.next_page_token = encode_page_token(offset + max_results)
        return page

    def _experiment_ids(self, conn: Any, experiment: str | Iterable[str] | None) -> list[str]:
        E = schema.experiments
        if experiment is None:
            return list(conn.scalars(select(E.c.id)))
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        return [_repo.find_experiment(conn, name).id for name in names]

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of metric ``key`` of a run, by step then time."""
        self.flush()
        with self.store.read() as conn:
            return _repo.metric_history(conn, _repo.get_run(conn, run_id).id, key)

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The files stored with a run."""
        with self.store.read() as conn:
            return _repo.run_artifacts(conn, _repo.get_run(conn, run_id).id)

    def _artifact(self, run_id: str, path: str) -> ArtifactRef:
        wanted = safe_relative_path(path)
        for ref in self.list_artifacts(run_id):
            if ref.path == wanted:
                return ref
        raise NotFoundError(f"run {run_id} has no artifact {wanted!r}")

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact file, checked against its digest."""
        return self.artifact_store.get_bytes(self._artifact(run_id, path).digest)

    def download_artifacts(
        self, run_id: str, dest: str | Path, path: str | None = None
    ) -> list[Path]:
        """Copy a run's artifacts (all, or those under ``path``) into folder ``dest``."""
        prefix = safe_relative_path(path) if path else None
        refs = [
            r
            for r in self.list_artifacts(run_id)
            if prefix is None or r.path == prefix or r.path.startswith(prefix + "/")
        ]
        if prefix is not None and not refs:
            raise NotFoundError(f"run {run_id} has no artifact {prefix!r}")
        written = []
        for ref in refs:
            target = safe_join(Path(dest), ref.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(self.artifact_store.download(ref.digest, target))
        return written


def start_run(
    experiment: str = "default",
    *,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    parent: ActiveRun | str | None = None,
    settings: Settings | None = None,
) -> ActiveRun:
    """Open a run in the store that ``settings`` (or the environment) names.

    See :meth:`Client.start_run`.

    Example:
        >>> with loopml.start_run(experiment="churn") as run:  # doctest: +SKIP
        ...     run.log_param("lr", 0.1)
        ...     run.log_metric("auc", 0.91)
    """
    return Client.default(settings).start_run(
        experiment, name=name, params=params, tags=tags, parent=parent
    )
