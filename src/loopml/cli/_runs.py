"""``loopml experiments ...`` and ``loopml runs ...``: read what tracking stored."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, format_ms, format_number, print_json
from loopml.core import Run
from loopml.tracking import Client

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Tracking runs: list, show, compare.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _client(ctx: typer.Context) -> Client:
    return Client(settings_from(ctx), create_store=False)


def _duration(run: Run) -> str:
    seconds = run.duration_s
    return "-" if seconds is None else f"{seconds:.1f}s"


@experiments_app.command("list")
def experiments_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """List experiments with their number of runs."""
    rows = _client(ctx).list_experiments()
    if json_:
        print_json(
            [
                {
                    "id": e.id,
                    "name": e.name,
                    "created_ms": e.created_ms,
                    "runs": n,
                    "last_run_ms": last,
                }
                for e, n, last in rows
            ]
        )
        return
    table = Table("name", "runs", "last run", "id", title="experiments")
    for experiment, count, last in rows:
        table.add_row(experiment.name, str(count), format_ms(last), experiment.id)
    console.print(table)


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Experiment name (repeatable); all when omitted."),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\""),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)."),
    ] = None,
    max_results: Annotated[int, typer.Option("--max", help="Most runs to list.")] = 50,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="Metric column to show (repeatable); default the first three."
        ),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """List runs, newest first unless ordered otherwise.

    Run ids are shortened to 8 characters; any prefix of 6 or more works wherever a
    run id is asked for.
    """
    runs = _client(ctx).search_runs(
        experiment or None, filter=filter_, order_by=order_by, max_results=max_results
    )
    if json_:
        print_json({"runs": list(runs), "next_page_token": runs.next_page_token})
        return
    shown = (
        metric or sorted({k for r in runs for k in r.metrics if not k.startswith("system/")})[:3]
    )
    table = Table(title="runs")
    for column in ("run id", "name", "status", "started", "duration", *shown):
        table.add_column(column, no_wrap=column in {"run id", "status", "started", "duration"})
    for run in runs:
        values = [format_number(run.metrics[m]) if m in run.metrics else "-" for m in shown]
        table.add_row(
            run.id[:8],
            run.name,
            run.status.value,
            format_ms(run.start_ms)[5:16],
            _duration(run),
            *values,
        )
    console.print(table)
    if runs.next_page_token:
        console.print(f"[dim]more runs match; raise --max (now {max_results}) to see them[/dim]")


@runs_app.command("show")
def runs_show(ctx: typer.Context, run_id: str, json_: JsonFlag = False) -> None:
    """Show one run: attributes, params, metrics, tags and artifacts."""
    client = _client(ctx)
    run = client.get_run(run_id)
    artifacts = client.list_artifacts(run_id)
    if json_:
        print_json({"run": run, "artifacts": artifacts})
        return
    console.print(
        f"[bold]run {run.name}[/bold] ({run.id})  status {run.status.value}, "
        f"started {format_ms(run.start_ms)}, duration {_duration(run)}"
    )
    if run.parent_id:
        console.print(f"parent run {run.parent_id}")
    for title, values in (
        ("params", run.params),
        ("metrics (latest)", run.metrics),
        ("tags", run.tags),
    ):
        table = Table("key", "value", title=title, title_justify="left")
        for key, value in sorted(values.items()):
            table.add_row(key, format_number(value) if isinstance(value, float) else str(value))
        console.print(table)
    if artifacts:
        table = Table("path", "size", "digest", title="artifacts", title_justify="left")
        for ref in artifacts:
            table.add_row(ref.path, str(ref.size), ref.digest)
        console.print(table)


@runs_app.command("compare")
def runs_compare(
    ctx: typer.Context,
    run_ids: list[str],
    json_: JsonFlag = False,
    all_: Annotated[
        bool, typer.Option("--all", help="Show rows that are equal across runs too.")
    ] = False,
) -> None:
    """Compare params and latest metrics of several runs side by side."""
    client = _client(ctx)
    runs = [client.get_run(run_id) for run_id in run_ids]
    if json_:
        print_json({"runs": runs})
        return
    table = Table("", *[f"{r.name}\n{r.id[:8]}" for r in runs], title="compare")
    for kind in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r, kind) if not k.startswith("system/")})
        for key in keys:
            cells = [getattr(r, kind).get(key) for r in runs]
            if not all_ and len({str(c) for c in cells}) == 1:
                continue
            table.add_row(
                f"{kind}.{key}",
                *[
                    "-" if c is None else format_number(c) if isinstance(c, float) else str(c)
                    for c in cells
                ],
            )
    console.print(table)
