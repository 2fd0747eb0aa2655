"""``loopml monitor report DEPLOYMENT``: drift, late-label performance and operations of a
deployment, per window, as a table, JSON or a self-contained HTML report.

The ``monitor`` group (``monitor_app``) is shared: the alerting commands add themselves
to it from their own module, loaded here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from loopml.monitoring import MonitorReport, WindowReport

monitor_app = typer.Typer(
    help="Monitoring: drift, late-label performance, latency and errors of deployments.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")


_SHOWN_METRICS = (("accuracy", "acc"), ("roc_auc", "auc"), ("mae", "mae"), ("rmse", "rmse"))


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g}%"


def _drift_cell(window: WindowReport) -> str:
    main = window.version(window.main_version) if window.main_version else None
    drift = None if main is None else main.data_drift
    if drift is None:
        return "-"
    flag = "[red]drifted[/red]" if drift.drifted else "ok"
    return f"{flag} {100 * drift.share_drifted:.0f}%"


def _prediction_cell(window: WindowReport) -> str:
    main = window.version(window.main_version) if window.main_version else None
    if main is None or main.prediction_drift is None:
        return "-"
    return _number(main.prediction_drift.get("psi"))


def _performance_cell(metrics: dict[str, float]) -> str:
    shown = [f"{short} {metrics[name]:.3f}" for name, short in _SHOWN_METRICS if name in metrics]
    return " ".join(shown) or "-"


def _window_label(report: MonitorReport, window: WindowReport) -> str:
    """A time window's start (UTC, to the minute) or a count window's number."""
    if report.window.endswith("rows"):
        text = f"#{window.index}"
    else:
        stamp = dt.datetime.fromtimestamp(window.start_ms / 1000, tz=dt.UTC)
        text = stamp.strftime("%m-%d %H:%M")
    return text if window.complete else f"{text} open"


def _table(report: MonitorReport) -> Table:
    table = Table(
        title=f"{escape(report.deployment)}: windows of {report.window} (UTC), "
        f"{report.rows_total:,} predictions ({report.rows_read:,} new)"
    )
    table.add_column("window", no_wrap=True)
    table.add_column("version", no_wrap=True)
    for column in ("rows", "drift", "pred PSI", "labels", "performance"):
        table.add_column(column, justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("err/fb", justify="right")
    for window in report.windows:
        when = _window_label(report, window)
        for position, version in enumerate(window.versions):
            label = escape(version.model_version) + (" (shadow)" if version.shadow_rows else "")
            table.add_row(
                when if position == 0 else "",
                label,
                f"{version.rows:,}",
                _drift_cell(window) if version.model_version == window.main_version else "",
                _prediction_cell(window) if version.model_version == window.main_version else "",
                f"{version.labelled:,} ({_percent(version.label_coverage)})",
                _performance_cell(version.performance),
                _number(version.latency_ms.get("0.99")),
                f"{_percent(version.error_rate)}/{_percent(version.fallback_rate)}",
            )
    return table


def _drifted_features(report: MonitorReport) -> str | None:
    current = report.current
    main = (
        None
        if current is None or current.main_version is None
        else current.version(current.main_version)
    )
    if main is None or main.data_drift is None:
        return None
    names = main.data_drift.drifted_features
    return ", ".join(names) if names else None


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment to monitor.")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="Window size: 15m, 1h, 1d, 1w or 10000rows.")
    ] = "1h",
    history: Annotated[
        int, typer.Option(min=1, max=10_000, help="How many of the newest windows to show.")
    ] = 24,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report to this file.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Read the deployment's new predictions and labels, then report its newest windows.

    Each pass reads only what the log and the feedback gained since the last one; the
    report is stored (``monitor.run``, contributor and up).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.core import ValidationError
    from loopml.monitoring import Monitor, parse_window

    window = parse_window(window).text  # bad input fails before any work
    if html is not None and not html.parent.is_dir():
        raise ValidationError(f"--html {html}: folder {html.parent} does not exist")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TextColumn("{task.completed:,} of {task.total} segments"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,  # a bar left in a pipe or log is noise
    ) as bar:
        task = bar.add_task(f"reading the log of {escape(deployment)}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with Monitor(settings_from(ctx)) as monitor:
            result = monitor.report(deployment, window, history=history, progress=advance)
    if html is not None:
        from loopml.monitoring import write_html_report

        write_html_report(result, html)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(_table(result))
    drifted = _drifted_features(result)
    if drifted:
        console.print(f"drifted features in the current window: {escape(drifted)}")
    if html is not None:
        console.print(f"HTML report: {escape(str(html))}")


# The alerting commands (monitor run, rules, alerts, prometheus-rules) join this group
# from their own module.
if importlib.util.find_spec("loopml.cli._monitor_alerts") is not None:
    importlib.import_module("loopml.cli._monitor_alerts")
