"""The handle on an open run: everything logged through it is buffered, then flushed."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from loopml.artifacts import safe_relative_path
from loopml.core import ArtifactRef, RunStatus, ValidationError, now_ms
from loopml.tracking._validate import check_key, metric_value, param_value, step_value

if TYPE_CHECKING:
    from loopml.tracking._client import Client

__all__ = ["ActiveRun"]


class ActiveRun:
    """An open tracking run; use it as a context manager or call :meth:`end`.

    Logging calls are buffered and cost microseconds; they reach the database when
    the run ends, on :meth:`flush`, on the flush interval and at exit.
    """

    def __init__(
        self,
        client: Client,
        *,
        run_id: str,
        name: str,
        experiment: str,
        experiment_id: str,
        parent_id: str | None,
    ) -> None:
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self._client = client
        self._buffer = client._buffer_for_runs()
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._latest: dict[str, tuple[int, int, float]] = {}  # key -> (step, timestamp, value)
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()
        self._system_samples = 0
        self._start_ms = now_ms()
        self.status: RunStatus = RunStatus.RUNNING

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r})"

    def _check_open(self) -> None:
        if self.status is not RunStatus.RUNNING:
            raise ValidationError(
                f"run {self.id} has ended ({self.status}); start a new run to log more"
            )

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter; a param cannot change once logged (ValidationError)."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several parameters at once."""
        self._check_open()
        values = {check_key("param", k): param_value(k, v) for k, v in params.items()}
        with self._lock:
            for key, value in values.items():
                old = self._params.get(key)
                if old is not None and old != value:
                    raise ValidationError(
                        f"param {key!r} of run {self.id} is already {old!r}; params are immutable, "
                        f"got {value!r} (log a metric or a tag for values that change)"
                    )
            self._params.update(values)
        self._buffer.add_params(self.id, values)

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Record one point of a metric; without ``step``, steps count 0, 1, 2... per key."""
        self._check_open()
        check_key("metric", key)
        number = metric_value(key, value)
        with self._lock:
            step = self._steps.get(key, 0) if step is None else step_value(key, step)
            self._steps[key] = step + 1
            point = (step, timestamp_ms or now_ms(), number)
            seen = self._latest.get(key)
            if seen is None or point[:2] >= seen[:2]:
                self._latest[key] = point
        self._buffer.add_metric((self.id, key, number, point[0], point[1]))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record one point for each metric, all with the same timestamp."""
        timestamp = now_ms()
        for key, value in metrics.items():
            self.log_metric(key, value, step=step, timestamp_ms=timestamp)

    def _log_system(self, values: dict[str, float]) -> None:
        if self.status is RunStatus.RUNNING:
            self._system_samples += 1
            self.log_metrics(values)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag; setting it again overwrites the value."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags at once."""
        self._check_open()
        values = {check_key("tag", k): param_value(k, v) for k, v in tags.items()}
        with self._lock:
            self._tags.update(values)
        self._buffer.add_tags(self.id, values)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactRef]:
        """Store a file, or every file under a folder, with the run.

        Args:
            local_path: the file or folder to store.
            artifact_path: where it appears inside the run; by default the file or
                folder name. Must stay inside the run (no ``..``, no absolute path).

        Returns:
            One :class:`ArtifactRef` per stored file.
        """
        self._check_open()
        source = Path(local_path)
        if not source.exists():
            raise ValidationError(f"artifact {str(source)!r} does not exist")
        base = safe_relative_path(artifact_path or source.name)
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        store = self._client.artifact_store
        refs = []
        for file in files:
            inner = base if file == source else f"{base}/{file.relative_to(source).as_posix()}"
            info = store.put_file(file)
            refs.append(
                ArtifactRef(path=safe_relative_path(inner), digest=info.digest, size=info.size)
            )
        self._client._record_artifacts(self, refs)
        return refs

    def log_text(self, text: str, artifact_path: str) -> ArtifactRef:
        """Store ``text`` (UTF-8) as an artifact file of the run."""
        self._check_open()
        path = safe_relative_path(artifact_path)
        info = self._client.artifact_store.put_bytes(text.encode("utf-8"))
        ref = ArtifactRef(path=path, digest=info.digest, size=info.size)
        self._client._record_artifacts(self, [ref])
        return ref

    def log_dict(self, data: Any, artifact_path: str) -> ArtifactRef:
        """Store ``data`` as a JSON artifact file of the run."""
        return self.log_text(json.dumps(data, indent=2, sort_keys=True, default=str), artifact_path)

    def start_child(self, name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a run nested under this one, in the same experiment."""
        return self._client.start_run(self.experiment, name=name, parent=self, **kwargs)

    def flush(self) -> None:
        """Write everything logged so far to the database now."""
        self._buffer.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run with ``status`` and flush; ending twice does nothing."""
        if self.status is not RunStatus.RUNNING:
            return
        final = RunStatus(status)
        self._client._finish(self)
        # A run shorter than a second gets no system sample: it would be noise, and
        # sampling costs as much as the rest of ending the run.
        if (
            self._system_samples == 0
            and self._client.settings.system_metrics
            and now_ms() - self._start_ms >= 1000
        ):
            self._log_system(self._client._sample_system())
        self.status = final
        with self._lock:
            # orjson writes NaN as null, as the metrics table stores it.
            summary = orjson.dumps(
                {
                    "params": self._params,
                    "metrics": {key: point[2] for key, point in self._latest.items()},
                    "tags": self._tags,
                }
            ).decode()
        self._buffer.add_finish(self.id, final.value, now_ms(), summary)
        self._buffer.flush()

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)
