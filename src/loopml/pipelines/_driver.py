"""The driver: walks the DAG, reuses cached steps, submits the rest, records it all.

Only the driver writes records; executors return results. A step becomes ready
when every step it reads from is done; a failure marks everything downstream of
it skipped while independent branches carry on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import orjson

from loopml.artifacts import ArtifactStore
from loopml.compute import Executor
from loopml.core import (
    RunStatus,
    Settings,
    capture_environment,
    new_id,
    now_ms,
)
from loopml.pipelines import _records as records
from loopml.pipelines._cache import cache_key
from loopml.pipelines._guard import guarded
from loopml.pipelines._pipeline import Node, Pipeline
from loopml.pipelines._records import StepStatus
from loopml.pipelines._task import InputSpec, StepResult, StepTask, execute_step
from loopml.pipelines._values import ValueRef, digest_value
from loopml.store import MetadataStore

__all__ = ["Driver", "StepCallback"]

StepCallback = Callable[[str, str], None]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


_IMMUTABLE = (int, float, str, bytes, bool, type(None), frozenset)


def _private_copy(value: Any) -> Any:
    """A consumer's own copy of an upstream value, so a step that changes its input in
    place cannot change what other steps see (the stored bytes stay the truth)."""
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


class Driver:
    def __init__(
        self,
        pipeline: Pipeline,
        params: dict[str, Any],
        settings: Settings,
        executor: Executor,
        store: MetadataStore,
        *,
        cache: bool,
        resume_from: str | None,
        on_step: StepCallback | None,
    ) -> None:
        self.pipeline = pipeline
        self.nodes = pipeline.nodes
        self.params = params
        self.settings = settings
        self.executor = executor
        self.cache = cache
        self.resume_from = resume_from
        self.on_step = on_step or (lambda _name, _status: None)
        self.store = store
        self.artifacts = ArtifactStore(settings.artifacts_url)
        self.run_id = new_id()
        self.step_ids = {name: new_id() for name in self.nodes}
        self.param_digests = {k: digest_value(v) for k, v in params.items()}
        self.datasets = self._resolve_datasets()
        self.outputs: dict[str, dict[str, ValueRef]] = {}
        self.memo: dict[str, Any] = {}  # digest -> value, in-process runs only
        self.status: dict[str, str] = dict.fromkeys(self.nodes, StepStatus.PENDING)
        self.first_error: str | None = None

    def _resolve_datasets(self) -> dict[str, tuple[str, str]]:
        """Each dataset input's ref -> (``name@version``, digest), fixed for the whole run."""
        wanted = {
            b.value.ref
            for node in self.nodes.values()
            for b in node.bindings.values()
            if b.kind == "dataset"
        }
        if not wanted:
            return {}
        from loopml.data import DataCatalog

        with DataCatalog(self.settings) as catalog:
            versions = {ref: catalog.get(ref) for ref in sorted(wanted)}
        return {ref: (version.ref, version.digest) for ref, version in versions.items()}

    # -- inputs and cache ---------------------------------------------------------

    def _inputs(self, node: Node) -> tuple[dict[str, InputSpec], dict[str, Any], list[str]]:
        specs: dict[str, InputSpec] = {}
        described: dict[str, Any] = {}
        datasets: list[str] = []
        for arg, binding in node.bindings.items():
            if binding.kind == "output":
                ref = self.outputs[binding.node][binding.output]
                digest = ref.digest
                if digest in self.memo:
                    value = _private_copy(self.memo[digest])
                    specs[arg] = InputSpec(value=value, ref=ref, has_value=True)
                else:
                    specs[arg] = InputSpec(ref=ref)
            elif binding.kind == "param":
                digest = self.param_digests[binding.value]
                specs[arg] = InputSpec(value=self.params[binding.value], has_value=True)
            elif binding.kind == "dataset":
                version_ref, digest = self.datasets[binding.value.ref]
                specs[arg] = InputSpec(dataset=version_ref)
                datasets.append(version_ref)
            else:
                digest = digest_value(binding.value)
                specs[arg] = InputSpec(value=binding.value, has_value=True)
            described[arg] = {"from": binding.describe(), "digest": digest}
        return specs, described, datasets

    def _reusable(self, key: str, use_cache: bool) -> records.StepRunRecord | None:
        with self.store.read() as conn:
            found = None
            if self.resume_from is not None:
                found = records.find_cached(conn, key, from_run=self.resume_from)
            if found is None and use_cache:
                found = records.find_cached(conn, key)
        if found is None:
            return None
        # A blob removed from the store since makes the record unusable: run again.
        if not all(self.artifacts.exists(ref.digest) for ref in found.outputs.values()):
            return None
        return found

    # -- one step -------------------------------------------------------------------

    def _update_step(self, name: str, **values: Any) -> None:
        step_id = self.step_ids[name]
        self.store.transact(lambda conn: records.update_step_run(conn, step_id, **values))
        if "status" in values:
            self.status[name] = values["status"]
            self.on_step(name, values["status"])

    def _start(self, name: str, tracking_run_id: str | None) -> Future[Any] | None:
        """Reuse the step's outputs, or submit it; a future when it was submitted."""
        node = self.nodes[name]
        specs, described, datasets = self._inputs(node)
        key = cache_key(node.step, {arg: d["digest"] for arg, d in described.items()})
        common = {"cache_key": key, "inputs": _json(described), "datasets": _json(datasets)}
        reused = self._reusable(key, self.cache and node.step.cache)
        if reused is not None:
            self.outputs[name] = reused.outputs
            now = now_ms()
            outputs = {k: v.to_json() for k, v in reused.outputs.items()}
            self._update_step(
                name,
                status=StepStatus.CACHED,
                cached_from=reused.id,
                outputs=_json(outputs),
                start_ms=now,
                end_ms=now,
                **common,
            )
            return None
        self._update_step(name, status=StepStatus.RUNNING, start_ms=now_ms(), **common)
        task = StepTask(
            step=node.step,
            node=name,
            inputs=specs,
            settings=self.settings,
            pipeline=self.pipeline.name,
            pipeline_run_id=self.run_id,
            step_run_id=self.step_ids[name],
            tracking_run_id=tracking_run_id,
            keep_values=self.executor.in_process,
        )
        try:
            return self.executor.submit(
                execute_step,
                task,
                resources=node.step.resources,
                name=f"{self.pipeline.name}.{name}",
            )
        except Exception as exc:  # the step fails like any other; the walk goes on
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            return failed

    def _finish(self, name: str, future: Future[Any]) -> None:
        try:
            result: StepResult = future.result()
        except Exception as exc:  # the executor itself failed: pickling, a lost worker
            now = now_ms()
            result = StepResult(
                ok=False, attempts=1, start_ms=now, end_ms=now, error=f"executor: {exc!r}"
            )
        logs = self.artifacts.put_bytes(result.logs.encode()).digest if result.logs else None
        if result.ok:
            self.outputs[name] = result.outputs
            for output, ref in result.outputs.items():
                if output in result.values:
                    self.memo[ref.digest] = result.values[output]
            self._update_step(
                name,
                status=StepStatus.SUCCEEDED,
                outputs=_json({k: v.to_json() for k, v in result.outputs.items()}),
                attempts=result.attempts,
                logs=logs,
                tracking_run_id=result.tracking_run_id,
                start_ms=result.start_ms,
                end_ms=result.end_ms,
            )
            return
        self.first_error = self.first_error or f"step {name!r} failed: {result.error}"
        self._update_step(
            name,
            status=StepStatus.FAILED,
            attempts=result.attempts,
            logs=logs,
            error=result.error,
            tracking_run_id=result.tracking_run_id,
            start_ms=result.start_ms,
            end_ms=result.end_ms,
        )

    # -- the walk ---------------------------------------------------------------------

    def _walk(self, tracking_run_id: str | None) -> None:
        pending = list(self.nodes)
        in_flight: dict[Future[Any], str] = {}
        blocked = {StepStatus.FAILED, StepStatus.SKIPPED}
        while pending or in_flight:
            for name in list(pending):
                upstream = [self.status[up] for up in self.nodes[name].upstream]
                if any(s in blocked for s in upstream):
                    pending.remove(name)
                    self._update_step(
                        name, status=StepStatus.SKIPPED, error="an upstream step failed"
                    )
                elif all(s in StepStatus.DONE for s in upstream):
                    if len(in_flight) >= self.executor.max_parallel:
                        break
                    pending.remove(name)
                    future = self._start(name, tracking_run_id)
                    if future is not None:
                        in_flight[future] = name
            if not in_flight:
                # One pass in run order settles every step whose upstream settled in
                # the same pass, so with nothing in flight nothing can be left.
                if pending:
                    raise RuntimeError(f"pipeline walk stalled with {pending} pending")
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                self._finish(in_flight.pop(future), future)

    def run(self, *, ref: str | None, started_by: str) -> str:
        env = capture_environment(self.settings.project_dir)
        start = now_ms()
        from loopml.tracking import Client

        client = Client(self.settings)
        tracking = client.start_run(
            experiment=self.pipeline.name,
            name=f"{self.pipeline.name}-{self.run_id[:8]}",
            params={k: v if isinstance(v, str) else _json(v) for k, v in self.params.items()},
            tags={
                "loopml.pipeline.run_id": self.run_id,
                "loopml.pipeline.executor": self.executor.kind,
            },
        )
        client.flush()  # steps in other processes nest their runs under this row
        row = {
            "id": self.run_id,
            "pipeline": self.pipeline.name,
            "ref": ref,
            "status": "running",
            "params": _json(self.params),
            "executor": self.executor.kind,
            "cache": int(self.cache),
            "tracking_run_id": tracking.id,
            "code_version": env.get("loopml.git.commit"),
            "resumed_from": self.resume_from,
            "started_by": started_by,
            "start_ms": start,
        }
        steps = [
            {
                "id": self.step_ids[name],
                "pipeline_run_id": self.run_id,
                "name": name,
                "position": position,
                "status": StepStatus.PENDING,
                "attempts": 0,
                "inputs": "{}",
                "datasets": "[]",
            }
            for position, name in enumerate(self.nodes)
        ]
        action = "pipeline.run" if self.resume_from is None else "pipeline.resume"
        audit = {
            "pipeline": self.pipeline.name,
            "params": self.params,
            "executor": self.executor.kind,
        }
        try:
            guarded(
                self.settings,
                self.store,
                action,
                f"pipeline-run:{self.run_id}",
                lambda conn: records.insert_pipeline_run(conn, row, steps),
                after=orjson.loads(_json(audit)),
                reason=started_by,
            )
        except BaseException:  # nothing was recorded: close the tracking run too
            tracking.end(RunStatus.FAILED)
            client.close()
            raise
        status, error = "failed", None
        try:
            self._walk(tracking.id)
            failed = [n for n, s in self.status.items() if s not in StepStatus.DONE]
            status = "failed" if failed else "succeeded"
            error = self.first_error
        except BaseException as exc:
            error = (
                f"interrupted: {exc!r}" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            )
            for name, state in self.status.items():
                if state in (StepStatus.PENDING, StepStatus.RUNNING):
                    self._update_step(name, status=StepStatus.FAILED, error=error, end_ms=now_ms())
            raise
        finally:
            cached = sum(1 for s in self.status.values() if s == StepStatus.CACHED)
            try:
                tracking.log_metrics({"steps": len(self.nodes), "steps_cached": cached})
                tracking.end(RunStatus.FINISHED if status == "succeeded" else RunStatus.FAILED)
                client.close()
            except Exception as exc:  # the pipeline's own record must still be finished
                error = f"{error or ''}; closing its tracking run failed: {exc!r}".lstrip("; ")
            self.store.transact(
                lambda conn: records.update_pipeline_run(
                    conn, self.run_id, status=status, error=error, end_ms=now_ms()
                )
            )
        return self.run_id
