"""``loopml run`` and ``loopml pipelines ...``: run, list, show, resume and draw pipelines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, format_ms, print_json
from loopml.compute import EXECUTOR_KINDS
from loopml.core import ValidationError
from loopml.pipelines import (
    PipelineRunRecord,
    PipelineRuns,
    StepStatus,
    load_pipeline,
    resume_run,
    run_ref,
)
from loopml.pipelines._params import parse_param_options
from loopml.pipelines._render import render_run_tree

pipelines_app = typer.Typer(
    help="Pipelines: list, inspect, resume and draw pipeline runs.", no_args_is_help=True
)
app.add_typer(pipelines_app, name="pipelines")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ExecutorOption = Annotated[
    str, typer.Option("--executor", "-e", help=f"Where steps run: {', '.join(EXECUTOR_KINDS)}.")
]
RayAddress = Annotated[
    str | None,
    typer.Option(help="An existing Ray cluster (host:port); default: start a local one."),
]
Workers = Annotated[
    int | None, typer.Option(help="Process pool size, or CPUs of a local Ray cluster.")
]
_FINISHED = StepStatus.DONE | {StepStatus.FAILED, StepStatus.SKIPPED}


def _check_executor(kind: str) -> str:
    if kind not in EXECUTOR_KINDS:
        raise ValidationError(
            f"--executor must be one of {', '.join(EXECUTOR_KINDS)}; got {kind!r}"
        )
    return kind


@contextmanager
def _step_progress(total: int) -> Iterator[Callable[[str, str], None]]:
    """A bar of finished steps on stderr, drawn only on a terminal."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("steps", total=total)

        def on_step(name: str, status: str) -> None:
            if status in _FINISHED:
                progress.advance(task)
            progress.update(task, description=f"{name}: {status}")

        yield on_step


def _run_json(run: PipelineRunRecord) -> dict[str, object]:
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "ref": run.ref,
        "status": run.status,
        "error": run.error,
        "params": run.params,
        "executor": run.executor,
        "cache": run.cache,
        "tracking_run_id": run.tracking_run_id,
        "code_version": run.code_version,
        "resumed_from": run.resumed_from,
        "started_by": run.started_by,
        "start_ms": run.start_ms,
        "end_ms": run.end_ms,
        "duration_ms": run.duration_ms,
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "cache_hit": s.status == StepStatus.CACHED,
                "cached_from": s.cached_from,
                "attempts": s.attempts,
                "duration_ms": s.duration_ms,
                "error": s.error,
                "inputs": s.inputs,
                "outputs": {k: v.to_json() for k, v in s.outputs.items()},
                "datasets": s.datasets,
                "logs": s.logs,
                "tracking_run_id": s.tracking_run_id,
            }
            for s in run.steps
        ],
    }


def _report(run: PipelineRunRecord, json_: bool) -> None:
    if json_:
        print_json(_run_json(run))
    else:
        console.print(render_run_tree(run), markup=False, highlight=False)
        cached = sum(1 for s in run.steps if s.status == StepStatus.CACHED)
        seconds = (run.duration_ms or 0) / 1000
        console.print(
            f"{run.status} in {seconds:.2f}s, {cached}/{len(run.steps)} steps cached; "
            f"run id {run.id}",
            markup=False,
            highlight=False,
        )
    if run.status != "succeeded":
        err_console.print(f"error: {run.error}", markup=False, highlight=False)
        raise typer.Exit(1)


@app.command("run")
def run_command(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="module:pipeline or path/to/file.py:pipeline")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value; repeat for more.")
    ] = None,
    executor: ExecutorOption = "local",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step again.")] = False,
    ray_address: RayAddress = None,
    workers: Workers = None,
    json_: JsonFlag = False,
) -> None:
    """Run a pipeline; exit code 1 when a step fails."""
    settings = settings_from(ctx)
    params = parse_param_options(param or [])
    total = len(load_pipeline(ref).nodes)
    with _step_progress(total) as on_step:
        run = run_ref(
            ref,
            params=params,
            executor=_check_executor(executor),
            settings=settings,
            cache=not no_cache,
            started_by="cli",
            ray_address=ray_address,
            max_workers=workers,
            on_step=on_step,
        )
    _report(run, json_)


@pipelines_app.command("list")
def pipelines_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Pipelines that have run, with their run count and newest run."""
    found = PipelineRuns(settings_from(ctx), create_store=False).pipelines()
    if json_:
        print_json(
            [
                {
                    "name": name,
                    "runs": count,
                    "last_run": run.id,
                    "last_status": run.status,
                    "last_start_ms": run.start_ms,
                    "ref": run.ref,
                }
                for name, count, run in found
            ]
        )
        return
    table = Table("pipeline", "runs", "last run", "last status", "ref", title="pipelines")
    for name, count, run in found:
        table.add_row(name, str(count), format_ms(run.start_ms), run.status, run.ref or "-")
    console.print(table)


@pipelines_app.command("runs")
def pipelines_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Pipeline runs, newest first."""
    runs = PipelineRuns(settings_from(ctx), create_store=False).runs(pipeline, limit)
    if json_:
        print_json([{k: v for k, v in _run_json(r).items() if k != "steps"} for r in runs])
        return
    table = Table("id", "pipeline", "status", "started", "duration", "by", title="pipeline runs")
    for run in runs:
        duration = "-" if run.duration_ms is None else f"{run.duration_ms / 1000:.2f}s"
        table.add_row(
            run.id[:12], run.pipeline, run.status, format_ms(run.start_ms), duration, run.started_by
        )
    console.print(table)


@pipelines_app.command("show")
def pipelines_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix (6+ characters).")],
    logs: Annotated[str | None, typer.Option(help="Print this step's captured logs.")] = None,
    json_: JsonFlag = False,
) -> None:
    """A run's DAG with each step's status, cache hit and duration."""
    runs = PipelineRuns(settings_from(ctx), create_store=False)
    run = runs.get(run_id)
    if logs is not None:
        text = runs.logs(run.id, logs)
        console.print(text or f"(step {logs} printed nothing)", markup=False, highlight=False)
        return
    if json_:
        print_json(_run_json(run))
        return
    console.print(render_run_tree(run), markup=False, highlight=False)
    console.print(
        f"params {run.params}; executor {run.executor}; started {format_ms(run.start_ms)} by "
        f"{run.started_by}; code {run.code_version or '-'}; tracking run {run.tracking_run_id}",
        markup=False,
        highlight=False,
    )
    if run.error:
        console.print(f"error: {run.error}", markup=False, highlight=False)


@pipelines_app.command("resume")
def pipelines_resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The failed run to resume.")],
    executor: Annotated[
        str | None, typer.Option("--executor", "-e", help="Default: the failed run's executor.")
    ] = None,
    ray_address: RayAddress = None,
    workers: Workers = None,
    json_: JsonFlag = False,
) -> None:
    """Re-run a failed run from its failure, reusing every step that succeeded."""
    run = resume_run(
        run_id,
        settings=settings_from(ctx),
        executor=None if executor is None else _check_executor(executor),
        ray_address=ray_address,
        max_workers=workers,
    )
    _report(run, json_)


@pipelines_app.command("graph")
def pipelines_graph(
    ref: Annotated[str, typer.Argument(help="module:pipeline or path/to/file.py:pipeline")],
    format_: Annotated[
        str, typer.Option("--format", "-f", help="text, dot (Graphviz) or mermaid.")
    ] = "text",
) -> None:
    """Draw a pipeline's DAG without running it."""
    found = load_pipeline(ref)
    renderers = {"text": found.tree, "dot": found.to_dot, "mermaid": found.to_mermaid}
    if format_ not in renderers:
        raise ValidationError(f"--format must be one of text, dot, mermaid; got {format_!r}")
    console.print(renderers[format_](), markup=False, highlight=False)
