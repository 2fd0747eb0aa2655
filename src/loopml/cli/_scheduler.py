"""``loopml scheduler ...`` and ``loopml events ...``: define, inspect and run schedules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, format_ms, print_json, to_jsonable
from loopml.compute import EXECUTOR_KINDS
from loopml.core import ValidationError
from loopml.pipelines._cron import next_slot
from loopml.pipelines._params import parse_param_options
from loopml.pipelines._scheduler import Scheduler
from loopml.pipelines._schedules import Fire, Schedule
from loopml.pipelines._ticks import slot_key

scheduler_app = typer.Typer(
    help="Schedules and triggers: run pipelines on a cron, on new data, on events.",
    no_args_is_help=True,
)
app.add_typer(scheduler_app, name="scheduler")
events_app = typer.Typer(
    help="Events that triggers react to (drift alerts, nudges).", no_args_is_help=True
)
app.add_typer(events_app, name="events")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NameArg = Annotated[str, typer.Argument(help="Schedule name.")]
PipelineOption = Annotated[
    str,
    typer.Option("--pipeline", help="Pipeline to run: module:attr or path/to/file.py:attr."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="key=value passed to the pipeline (repeatable)."),
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", "-e", help=f"Where steps run: {', '.join(EXECUTOR_KINDS)}.")
]


def _scheduler(ctx: typer.Context, name: str | None = None) -> Scheduler:
    return Scheduler(settings_from(ctx), name=name)


def _next(schedule: Schedule) -> str:
    """When the schedule fires next, in words."""
    if not schedule.enabled:
        return "disabled"
    if schedule.kind == "cron":
        try:
            return slot_key(next_slot(schedule.spec, dt.datetime.now(dt.UTC)))
        except ValidationError:
            return "never"
    if schedule.kind == "dataset":
        return f"a version of {schedule.spec} after v{schedule.cursor}"
    return f"an event {schedule.spec} after #{schedule.cursor}"


def _schedule_dict(schedule: Schedule) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(schedule)
    data["next"] = _next(schedule)
    return data


def _print_added(schedule: Schedule, json_: bool) -> None:
    if json_:
        print_json(_schedule_dict(schedule))
        return
    what = {"cron": "cron", "dataset": "on dataset", "event": "on event"}[schedule.kind]
    console.print(
        f"added [bold]{escape(schedule.name)}[/bold]: {what} {escape(schedule.spec)} -> "
        f"{escape(schedule.pipeline_ref)} "
        f"(next: {_next(schedule)})"
    )


@scheduler_app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    pipeline: PipelineOption,
    cron: Annotated[str, typer.Option("--cron", help="Cron expression in UTC, or @daily etc.")],
    param: ParamOption = None,
    executor: ExecutorOption = "local",
    json_: JsonFlag = False,
) -> None:
    """Run a pipeline at every slot of a cron expression (UTC)."""
    params = parse_param_options(param or [])
    with _scheduler(ctx) as sched:
        schedule = sched.add_schedule(name, pipeline, cron, params=params, executor=executor)
    _print_added(schedule, json_)


@scheduler_app.command("trigger")
def trigger(
    ctx: typer.Context,
    name: NameArg,
    pipeline: PipelineOption,
    on_dataset: Annotated[
        str | None, typer.Option("--on-dataset", help="Fire on each new version of this dataset.")
    ] = None,
    on_event: Annotated[
        str | None, typer.Option("--on-event", help="Fire on each event with this name.")
    ] = None,
    param: ParamOption = None,
    executor: ExecutorOption = "local",
    json_: JsonFlag = False,
) -> None:
    """Run a pipeline on each new version of a dataset, or on each event of a name."""
    params = parse_param_options(param or [])
    with _scheduler(ctx) as sched:
        schedule = sched.add_trigger(
            name,
            pipeline,
            on_dataset=on_dataset,
            on_event=on_event,
            params=params,
            executor=executor,
        )
    _print_added(schedule, json_)


@scheduler_app.command("list")
def list_(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """List schedules and triggers."""
    with _scheduler(ctx) as sched:
        schedules = sched.list()
    if json_:
        print_json([_schedule_dict(s) for s in schedules])
        return
    table = Table(
        "name", "kind", "spec", "pipeline", "executor", "params", "next", title="schedules"
    )
    for s in schedules:
        params = " ".join(f"{k}={v}" for k, v in s.params.items()) or "-"
        table.add_row(
            *(escape(v) for v in (s.name, s.kind, s.spec, s.pipeline_ref, s.executor, params)),
            _next(s),
        )
    console.print(table)


def _print_fires(fires: list[Fire], title: str) -> None:
    table = Table("schedule", "slot", "status", "pipeline run", "scheduler", "at", title=title)
    for f in fires:
        style = {"succeeded": "green", "failed": "red"}.get(f.status, "yellow")
        table.add_row(
            escape(f.schedule),
            escape(f.slot),
            f"[{style}]{f.status}[/{style}]",
            f.pipeline_run_id or "-",
            escape(f.scheduler),
            format_ms(f.created_ms),
        )
    console.print(table)
    for f in fires:
        if f.error:
            console.print(
                f"[red]{escape(f.schedule)} {escape(f.slot)}[/red]: {escape(f.error)}",
                highlight=False,
            )


@scheduler_app.command("fires")
def fires(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this schedule's fires.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json_: JsonFlag = False,
) -> None:
    """Show the slots schedules fired, newest first, with their pipeline runs."""
    with _scheduler(ctx) as sched:
        found = sched.fires(name, limit=limit)
    if json_:
        print_json(found)
        return
    _print_fires(found, f"fires of {name}" if name else "fires")


@scheduler_app.command("remove")
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Delete a schedule and its fire history."""
    with _scheduler(ctx) as sched:
        sched.remove(name)
    console.print(f"removed {name}", markup=False)


@scheduler_app.command("enable")
def enable(ctx: typer.Context, name: NameArg) -> None:
    """Turn a schedule on again."""
    with _scheduler(ctx) as sched:
        sched.set_enabled(name, True)
    console.print(f"enabled {name}", markup=False)


@scheduler_app.command("disable")
def disable(ctx: typer.Context, name: NameArg) -> None:
    """Turn a schedule off; it fires nothing until enabled."""
    with _scheduler(ctx) as sched:
        sched.set_enabled(name, False)
    console.print(f"disabled {name}", markup=False)


@scheduler_app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Tick once and exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between ticks (keep under 60).")
    ] = 30.0,
    max_ticks: Annotated[
        int | None, typer.Option("--max-ticks", help="Stop after this many ticks.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="This scheduler's name in fires (host:pid).")
    ] = None,
) -> None:
    """Fire due schedules until Ctrl-C. Several schedulers may run: each slot fires once."""

    def show(fire: Fire) -> None:
        style = "green" if fire.status == "succeeded" else "red"
        console.print(
            f"{escape(fire.schedule)} {escape(fire.slot)}: [{style}]{fire.status}[/{style}] "
            f"(pipeline run {fire.pipeline_run_id or '-'})",
            highlight=False,
        )

    with _scheduler(ctx, name) as sched:
        if not once:
            err_console.print(f"scheduler {sched.name}: ticking every {interval:g} s; Ctrl-C stops")
        ticks = sched.run(interval_s=interval, max_ticks=1 if once else max_ticks, on_fire=show)
    if not once:
        err_console.print(f"scheduler stopped after {ticks} tick(s)")


@events_app.command("emit")
def emit(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Event name, e.g. drift.")],
    payload: Annotated[
        str | None, typer.Option("--payload", help="JSON payload, e.g. '{\"psi\": 0.3}'.")
    ] = None,
    source: Annotated[str, typer.Option(help="Who raised it.")] = "cli",
) -> None:
    """Record an event; triggers on it fire at the next scheduler tick."""
    try:
        value = None if payload is None else json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--payload is not JSON: {exc}") from exc
    with _scheduler(ctx) as sched:
        event_id = sched.emit_event(name, value, source=source)
    console.print(f"event {name} #{event_id}", markup=False)


@events_app.command("list")
def list_events(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only events with this name.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json_: JsonFlag = False,
) -> None:
    """Show recent events, newest first."""
    with _scheduler(ctx) as sched:
        found = sched.events(name, limit=limit)
    if json_:
        print_json(found)
        return
    table = Table("id", "name", "source", "at", "payload", title="events")
    for e in found:
        table.add_row(
            str(e.id),
            escape(e.name),
            escape(e.source),
            format_ms(e.created_ms),
            escape(json.dumps(e.payload)),
        )
    console.print(table)
