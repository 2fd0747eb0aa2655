"""Running pipelines: from Python, from a reference (``module:name``), and resuming."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.compute import Executor, create_executor
from loopml.core import (
    Settings,
    ValidationError,
    load_settings,
)
from loopml.governance import require
from loopml.pipelines import _records as records
from loopml.pipelines._driver import Driver, StepCallback
from loopml.pipelines._loader import load_pipeline, reference_of
from loopml.pipelines._params import resolve_params
from loopml.pipelines._pipeline import Pipeline
from loopml.pipelines._records import PipelineRunRecord
from loopml.store import open_store

__all__ = ["resume_run", "run_pipeline", "run_ref"]


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor = "local",
    settings: Settings | None = None,
    cache: bool = True,
    started_by: str = "python",
    ray_address: str | None = None,
    max_workers: int | None = None,
    param_strings: bool = False,
    on_step: StepCallback | None = None,
    resume_from: str | None = None,
    ref: str | None = None,
) -> PipelineRunRecord:
    """Run ``pipeline`` and return its record; a failed step does not raise.

    Args:
        params: parameter overrides (over ``loopml.toml`` and the defaults).
        executor: ``"local"`` (in this process, default), ``"process"`` (a process
            pool; independent steps run in parallel), ``"ray"``, or an executor object.
        cache: False runs every step even when its cached outputs could be reused.
        ray_address: an existing Ray cluster; without it a local one is started.
        max_workers: pool size for ``process``, CPUs of the local Ray cluster.
        param_strings: ``params`` are strings from a command line, to convert to
            each parameter's type.
        on_step: called with ``(step, status)`` whenever a step changes status.
    """
    settings = settings or load_settings()
    values = resolve_params(pipeline, params, Path(settings.project_dir), strings=param_strings)
    pipeline.nodes  # noqa: B018 - draw the DAG now, so a broken pipeline records nothing
    store = open_store(settings.db_url)
    runner: Executor | None = None
    try:
        # Check permission before starting anything (a local Ray cluster takes seconds).
        require(settings, store, "pipeline.run" if resume_from is None else "pipeline.resume")
        runner = (
            create_executor(executor, max_workers=max_workers, ray_address=ray_address)
            if isinstance(executor, str)
            else executor
        )
        driver = Driver(
            pipeline,
            values,
            settings,
            runner,
            store,
            cache=cache,
            resume_from=resume_from,
            on_step=on_step,
        )
        run_id = driver.run(ref=ref or reference_of(pipeline), started_by=started_by)
        with store.read() as conn:
            return records.get_pipeline_run(conn, run_id)
    finally:
        store.close()
        if runner is not None and isinstance(executor, str):  # we made it: we close it
            runner.close()


def _portable_ref(ref: str, found: Pipeline) -> str:
    """``ref`` with a file path made absolute, so resume works from any folder."""
    target, sep, attr = ref.rpartition(":")
    if not sep:
        return reference_of(found) or ref
    if target.endswith(".py") or "/" in target:
        return f"{Path(target).resolve()}:{attr}"
    return ref


def run_ref(
    ref: str,
    *,
    params: Mapping[str, Any] | None = None,
    executor: str = "local",
    settings: Settings | None = None,
    started_by: str = "cli",
    cache: bool = True,
    **options: Any,
) -> PipelineRunRecord:
    """Load the pipeline ``ref`` names (``module:name`` or ``file.py:name``) and run it.

    String parameter values are converted to each parameter's type, as from a CLI.
    """
    found = load_pipeline(ref)
    return run_pipeline(
        found,
        params,
        executor=executor,
        settings=settings,
        cache=cache,
        started_by=started_by,
        param_strings=True,
        ref=_portable_ref(ref, found),
        **options,
    )


def resume_run(
    run_id: str,
    *,
    settings: Settings | None = None,
    executor: str | None = None,
    **options: Any,
) -> PipelineRunRecord:
    """Run a failed pipeline run again, reusing every step that succeeded in it."""
    settings = settings or load_settings()
    store = open_store(settings.db_url)
    try:
        with store.read() as conn:
            old = records.get_pipeline_run(conn, run_id)
    finally:
        store.close()
    if old.status == "succeeded":
        raise ValidationError(f"pipeline run {old.id} succeeded; there is nothing to resume")
    if old.ref is None:
        raise ValidationError(
            f"pipeline run {old.id} of {old.pipeline!r} was started from code that cannot be "
            "imported again (an interactive session); run it again from there"
        )
    return run_pipeline(
        load_pipeline(old.ref),
        old.params,
        executor=executor or old.executor,
        settings=settings,
        cache=old.cache,
        started_by=f"resume:{old.id}",
        param_strings=False,  # stored params are already typed
        resume_from=old.id,
        ref=old.ref,
        **options,
    )
