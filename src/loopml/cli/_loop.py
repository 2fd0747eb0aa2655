"""``loopml loop ...``: the controller that retrains, canaries, promotes and rolls back."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, format_ms, print_json
from loopml.loop import Decision, LoopController, TickReport

loop_app = typer.Typer(
    help="The loop controller: with a policy per deployment (loopml.toml, table "
    "loop.DEPLOYMENT) it retrains, canaries, promotes or rolls back on its own, and records "
    "every decision.",
    no_args_is_help=True,
)
app.add_typer(loop_app, name="loop")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Deployment = Annotated[str, typer.Argument(help="Deployment name.")]
Reason = Annotated[str | None, typer.Option(help="Why; kept in the audit log.")]


def _controller(ctx: typer.Context) -> LoopController:
    return LoopController(settings_from(ctx))


def _print_decisions(decisions: list[Decision]) -> None:
    for d in decisions:
        versions = " ".join(
            part
            for part in (
                f"candidate {d.candidate}" if d.candidate else "",
                f"champion {d.champion}" if d.champion else "",
            )
            if part
        )
        console.print(
            f"{d.kind} {d.deployment}{f' ({versions})' if versions else ''}: {d.reason}",
            markup=False,
        )


def _report_json(report: TickReport) -> dict[str, Any]:
    holder = report.holder
    return {
        "acted": report.acted,
        "holder": None
        if holder is None
        else {
            "owner": holder.owner,
            "acquired_ms": holder.acquired_ms,
            "expires_ms": holder.expires_ms,
        },
        "decisions": [d.to_dict() for d in report.decisions],
        "states": report.states,
    }


def _show(report: TickReport, json_: bool) -> None:
    if json_:
        print_json(_report_json(report))
        return
    if not report.acted:
        holder = report.holder
        who = f"{holder.owner} (until {format_ms(holder.expires_ms)})" if holder else "another one"
        console.print(f"another controller holds the loop lease: {who}; nothing done", markup=False)
        return
    _print_decisions(report.decisions)
    states = ", ".join(f"{name}: {state}" for name, state in sorted(report.states.items()))
    console.print(
        f"{len(report.decisions)} decision(s); {states or 'no deployments yet'}", markup=False
    )


@loop_app.command("tick")
def tick(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """One pass over every policy (for cron or a Kubernetes CronJob); waits for nothing."""
    with _controller(ctx) as controller:
        with err_console.status("loop: one pass over the policies"):
            report = controller.tick()
    _show(report, json_)


@loop_app.command("run")
def run(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between ticks.")] = 30.0,
    max_ticks: Annotated[
        int | None, typer.Option("--max-ticks", help="Stop after this many ticks.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Tick every --interval seconds until Ctrl-C, holding the lease meanwhile (another
    controller started beside it stands by until the lease is free)."""
    with _controller(ctx) as controller:
        if not json_:
            err_console.print(
                f"loop controller {controller.lease.owner}: ticking every {interval:g} s; "
                "Ctrl-C stops",
                markup=False,
            )
        ticks = controller.run(
            interval_s=interval, max_ticks=max_ticks, on_tick=lambda r: _show(r, json_)
        )
    if not json_:
        err_console.print(f"loop controller stopped after {ticks} tick(s)", markup=False)


@loop_app.command("history")
def history(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Argument(help="Only this deployment.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only retrain, reject, canary, promote, rollback, skip or error."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    json_: JsonFlag = False,
) -> None:
    """The controller's decisions, newest first, each with its kind and reason."""
    with _controller(ctx) as controller:
        found = controller.history(deployment, kind=kind, limit=limit)
    if json_:
        print_json([d.to_dict() for d in found])
        return
    table = Table("id", "when", "deployment", "kind", "candidate", "champion", "reason")
    for d in found:
        table.add_row(
            str(d.id),
            format_ms(d.ts_ms),
            d.deployment,
            d.kind,
            d.candidate or "-",
            d.champion or "-",
            d.reason,
        )
    console.print(table)


@loop_app.command("status")
def status(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Each policy's deployment, where its loop stands, and who holds the lease."""
    with _controller(ctx) as controller:
        policies = {p.deployment: p for p in controller.policies}
        states = {s.deployment: s for s in controller.states()}
        holder = controller.lease.holder()
    names = sorted(set(policies) | set(states))
    rows: list[dict[str, Any]] = []
    for name in names:
        state = states.get(name)
        rollout = (state.data.get("rollout") if state else None) or {}
        rows.append(
            {
                "deployment": name,
                "policy": name in policies,
                "state": state.state if state else "idle",
                "frozen": bool(state and state.frozen)
                or (name in policies and policies[name].guardrails.frozen),
                "candidate": rollout.get("candidate"),
                "champion": rollout.get("champion"),
                "step": rollout.get("step"),
            }
        )
    if json_:
        print_json(
            {
                "deployments": rows,
                "lease": None
                if holder is None
                else {"owner": holder.owner, "expires_ms": holder.expires_ms},
            }
        )
        return
    table = Table("deployment", "policy", "state", "frozen", "candidate", "champion", "step")
    for row in rows:
        step = "-" if row["step"] is None else str(int(row["step"]) + 1)
        table.add_row(
            row["deployment"],
            "yes" if row["policy"] else "no",
            row["state"],
            "yes" if row["frozen"] else "no",
            row["candidate"] or "-",
            row["champion"] or "-",
            step,
        )
    console.print(table)
    lease = (
        "free" if holder is None else f"held by {holder.owner} until {format_ms(holder.expires_ms)}"
    )
    console.print(f"lease: {lease}", markup=False)


@loop_app.command("freeze")
def freeze(ctx: typer.Context, deployment: Deployment, reason: Reason = None) -> None:
    """Stop the loop from acting on DEPLOYMENT; a rollout in progress holds where it is."""
    with _controller(ctx) as controller:
        controller.freeze(deployment, reason=reason)
    console.print(f"loop frozen for {deployment}", markup=False)


@loop_app.command("unfreeze")
def unfreeze(ctx: typer.Context, deployment: Deployment, reason: Reason = None) -> None:
    """Let the loop act on DEPLOYMENT again."""
    with _controller(ctx) as controller:
        controller.unfreeze(deployment, reason=reason)
    console.print(f"loop unfrozen for {deployment}", markup=False)
