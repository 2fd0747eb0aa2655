"""``loopml monitor run``, ``monitor rules``, ``monitor prometheus-rules`` and
``monitor alerts list|show|ack``: alerting on the ``monitor`` group of ``_monitor``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._app import settings_from
from loopml.cli._monitor import monitor_app
from loopml.cli._output import console, err_console, format_ms, print_json

if TYPE_CHECKING:
    from loopml.monitoring import Alert, AlertChange, MonitorPass

alerts_app = typer.Typer(
    help="Alerts: list them, see what happened to one, acknowledge it.", no_args_is_help=True
)
monitor_app.add_typer(alerts_app, name="alerts")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _change_line(change: AlertChange) -> str:
    alert = change.alert
    value = "no longer reported" if alert.value is None else f"{alert.value:.4g}"
    return f"{change.kind:<8} {alert.rule} [{alert.severity}] {alert.condition} (value {value})"


def _pass_json(result: MonitorPass) -> dict[str, Any]:
    return {
        "reports": {name: report.id for name, report in result.reports.items()},
        "skipped": result.skipped,
        "errors": result.errors,
        "changes": [{"kind": c.kind, "alert": c.alert.to_dict()} for c in result.changes],
        "deliveries": [
            {
                "alert": d.alert.id,
                "state": d.alert.state,
                "url": d.delivery.url,
                "ok": d.delivery.ok,
                "attempts": d.delivery.attempts,
                "status": d.delivery.status,
                "error": d.delivery.error,
            }
            for d in result.deliveries
        ],
        "events": [
            {"alert": e.alert.id, "name": e.name, "event_id": e.event_id, "error": e.error}
            for e in result.events
        ],
    }


@monitor_app.command("run")
def run(
    ctx: typer.Context,
    deployment: Annotated[
        list[str] | None,
        typer.Option("--deployment", "-d", help="Only this deployment (repeatable)."),
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Window spec of the reports: 1h, 15m, 10000rows ...")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """One monitoring pass: a report per deployment with traffic, the alert rules on its
    samples, webhooks for what fired or resolved, an alert.<rule> event per firing alert.

    Prints what fired, resolved or became pending. Exits 0 even when a deployment's
    report or a webhook failed (those are printed on stderr and stored).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.monitoring import parse_window, run_monitoring

    if window is not None:
        window = parse_window(window).text  # a bad spec fails the command, not each report
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TextColumn("{task.completed}/{task.total} segments"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"reading {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        result = run_monitoring(
            settings_from(ctx), deployment or None, window=window, progress=advance
        )
    if json_out:
        print_json(_pass_json(result))
        return
    for name, reason in result.errors.items():
        err_console.print(f"report of {escape(name)} failed: {escape(reason)}", markup=True)
    for delivery in result.deliveries:
        if not delivery.delivery.ok:
            err_console.print(
                f"webhook for alert {delivery.alert.id} failed: "
                f"{escape(str(delivery.delivery.error))}"
            )
    for event in result.events:
        if event.error is not None:
            err_console.print(f"event {escape(event.name)} failed: {escape(event.error)}")
    checked = ", ".join(sorted(result.reports)) or "none"
    typer.echo(
        f"reports: {checked}"
        + (f"; no traffic: {', '.join(result.skipped)}" if result.skipped else "")
    )
    if not result.changes:
        typer.echo("no alert changed")
    for change in result.changes:
        typer.echo(_change_line(change))
    sent = sum(1 for d in result.deliveries if d.delivery.ok)
    if result.deliveries:
        typer.echo(f"webhooks: {sent} sent, {len(result.deliveries) - sent} failed")
    raised = [e for e in result.events if e.event_id is not None]
    if raised:
        typer.echo("events: " + ", ".join(f"{e.name} #{e.event_id}" for e in raised))


@monitor_app.command("rules")
def rules(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """The alert rules in force: the defaults and [[monitoring.alerts]] of loopml.toml."""
    from loopml.monitoring import load_rules
    from loopml.monitoring._rules import format_duration

    found = load_rules(settings_from(ctx))
    if json_out:
        print_json(
            [
                {
                    "name": r.name,
                    "metric": r.metric,
                    "labels": dict(r.labels),
                    "comparison": r.comparison,
                    "threshold": r.threshold,
                    "for": format_duration(r.for_s),
                    "severity": r.severity,
                    "webhook": r.webhook,
                    "summary": r.describe(),
                }
                for r in found
            ]
        )
        return
    table = Table("rule", "condition", "for", "severity", "webhook")
    for rule in found:
        table.add_row(
            rule.name,
            escape(rule.condition),
            format_duration(rule.for_s),
            rule.severity,
            "yes" if rule.webhook else "-",
        )
    console.print(table)


@monitor_app.command("prometheus-rules")
def prometheus_rules_command(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Limit every rule to one deployment.")
    ] = None,
) -> None:
    """Prometheus alerting rules (YAML) equal to loopml's, over the gauges that
    `loopml serve` exposes on /metrics; check them with `promtool check rules FILE`."""
    from loopml.core import ValidationError
    from loopml.monitoring import load_rules, prometheus_rules

    if output is not None and not output.parent.is_dir():
        raise ValidationError(f"--output {output}: folder {output.parent} does not exist")

    text = prometheus_rules(load_rules(settings_from(ctx)), deployment=deployment)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


def _alert_row(alert: Alert) -> list[str]:
    value = "-" if alert.value is None else f"{alert.value:.4g}"
    return [
        alert.id,
        alert.rule,
        alert.state,
        alert.severity,
        escape(alert.deployment or "-"),
        value,
        format_ms(alert.fired_ms or alert.started_ms),
        format_ms(alert.resolved_ms),
        escape(alert.acked_by or "-"),
    ]


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="pending, firing or resolved (repeatable)."),
    ] = None,
    deployment: Annotated[str | None, typer.Option("--deployment", "-d")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_out: JsonFlag = False,
) -> None:
    """Alerts, newest first."""
    from loopml.monitoring import Alerts

    with Alerts(settings_from(ctx), create_store=False) as alerts:
        found = alerts.list(states=state or None, deployment=deployment, rule=rule, limit=limit)
    if json_out:
        print_json([a.to_dict() for a in found])
        return
    table = Table(
        "id", "rule", "state", "severity", "deployment", "value", "since", "resolved", "acked by"
    )
    for alert in found:
        table.add_row(*_alert_row(alert))
    console.print(table)


@alerts_app.command("show")
def show(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    json_out: JsonFlag = False,
) -> None:
    """One alert and everything that happened to it."""
    from loopml.monitoring import Alerts

    with Alerts(settings_from(ctx), create_store=False) as alerts:
        alert = alerts.get(alert_id)
        history = alerts.transitions(alert_id)
    if json_out:
        print_json(
            {
                **alert.to_dict(),
                "transitions": [
                    {
                        "kind": t.kind,
                        "value": t.value,
                        "detail": t.detail,
                        "actor": t.actor,
                        "ts_ms": t.ts_ms,
                    }
                    for t in history
                ],
            }
        )
        return
    title = f"[bold]{escape(alert.rule)}[/bold] {alert.state} ({alert.severity})"
    console.print(f"{title}: {escape(alert.condition)}")
    table = Table("when", "what", "value", "by", "detail")
    for t in history:
        value = "-" if t.value is None else f"{t.value:.4g}"
        table.add_row(format_ms(t.ts_ms), t.kind, value, escape(t.actor), escape(t.detail or ""))
    console.print(table)


@alerts_app.command("ack")
def ack(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    comment: Annotated[
        str | None, typer.Option("--comment", "-m", help="Why, or who is on it.")
    ] = None,
) -> None:
    """Acknowledge an alert (someone is on it); audited as alert.ack."""
    from loopml.monitoring import Alerts

    with Alerts(settings_from(ctx)) as alerts:
        alert = alerts.ack(alert_id, comment=comment)
    typer.echo(f"acknowledged {alert.id} ({alert.rule}, {alert.state}) as {alert.acked_by}")
