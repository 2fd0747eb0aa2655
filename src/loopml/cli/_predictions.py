"""``loopml predictions tail``: the newest predictions of a deployment, and new ones live."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, format_ms
from loopml.core import NotFoundError, Settings
from loopml.serving import Deployments, PredictionReader, PredictionRecord

predictions_app = typer.Typer(
    help="Predictions: what a deployment answered, from the prediction log.",
    no_args_is_help=True,
)
app.add_typer(predictions_app, name="predictions")

SUMMARY_CHARS = 48
# Records are stamped when scored and journaled a moment later, by several processes:
# a follow looks this far back so that one stamped earlier but logged later still shows.
LATE_MS = 10_000


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


def _inputs(record: PredictionRecord) -> str:
    return _short(" ".join(f"{k}={json.dumps(v)}" for k, v in record.inputs.items()))


def _output(record: PredictionRecord) -> str:
    output = record.output
    if isinstance(output, dict) and "prediction" in output:
        return _short(output["prediction"])
    return _short(output)


def _version(record: PredictionRecord) -> str:
    return record.model_version + (" (shadow)" if record.shadow else "")


def _row(record: PredictionRecord) -> list[str]:
    output = _output(record) + (" (fallback)" if record.fallback else "")
    return [
        time.strftime("%H:%M:%S", time.localtime(record.ts_ms / 1000)),
        record.prediction_id,
        _version(record),
        _inputs(record),
        output,
        f"{record.latency_ms:.1f}",
    ]


def _json_line(record: PredictionRecord) -> str:
    return json.dumps(
        {
            "prediction_id": record.prediction_id,
            "ts_ms": record.ts_ms,
            "deployment": record.deployment,
            "model_version": record.model_version,
            "inputs": record.inputs,
            "output": record.output,
            "latency_ms": record.latency_ms,
            "fallback": record.fallback,
            "shadow": record.shadow,
        },
        sort_keys=True,
    )


def _print(records: list[PredictionRecord], json_: bool, title: str | None) -> None:
    """``records`` oldest first: JSON lines, or a table (with a title and header when
    ``title`` is given, bare rows while following)."""
    if json_:
        for record in records:
            sys.stdout.write(_json_line(record) + "\n")
        sys.stdout.flush()
        return
    if title is not None and records:
        title += f", {format_ms(records[0].ts_ms)} to {format_ms(records[-1].ts_ms)}"
    table = Table(title=title, show_header=title is not None, box=box.SIMPLE_HEAD)
    # the id whole (to copy into `loopml lineage prediction`); inputs and output wrap
    table.add_column("time", no_wrap=True)
    table.add_column("prediction id", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("inputs", ratio=3, overflow="fold")
    table.add_column("output", ratio=2, overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    for record in records:
        table.add_row(*_row(record))
    console.print(table, markup=False, highlight=False)


@dataclass(frozen=True)
class _Logged:
    """What a follow does not print again: the ids logged by ``at_ms`` (within
    ``LATE_MS`` of it), whether ``-n`` showed them or cut them off."""

    at_ms: int
    ids: dict[str, int]

    @classmethod
    def now(cls, reader: PredictionReader, deployment: str) -> _Logged:
        at_ms = int(time.time() * 1000)
        records = reader.since(deployment, at_ms - LATE_MS)
        return cls(at_ms, {r.prediction_id: r.ts_ms for r in records})


def _follow(
    reader: PredictionReader,
    deployment: str,
    shown: list[PredictionRecord],
    logged: _Logged,
    json_: bool,
    interval: float,
    max_seconds: float | None,
) -> None:
    """Print each new record once, until Ctrl-C (or ``max_seconds``): new means not in
    ``logged`` (read before ``shown``) nor in ``shown``."""
    newest = max([logged.at_ms, *(r.ts_ms for r in shown)])
    seen = dict(logged.ids)
    seen.update((r.prediction_id, r.ts_ms) for r in shown)
    stop = None if max_seconds is None else time.monotonic() + max_seconds
    while stop is None or time.monotonic() < stop:
        time.sleep(interval)
        fresh = [
            r for r in reader.since(deployment, newest - LATE_MS) if r.prediction_id not in seen
        ]
        if fresh:
            _print(fresh, json_, None)
            newest = max(newest, *(r.ts_ms for r in fresh))
            seen.update((r.prediction_id, r.ts_ms) for r in fresh)
            seen = {pid: ts for pid, ts in seen.items() if ts >= newest - LATE_MS}


def _check_deployment(settings: Settings, name: str) -> None:
    """A name with no predictions must at least be a deployment (else: a typo)."""
    with Deployments(settings, create_store=False) as deployments:
        try:
            deployments.get(name)
        except NotFoundError:
            raise NotFoundError(
                f"no deployment {name!r} and no predictions logged for it"
            ) from None


@predictions_app.command("tail")
def tail(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    n: Annotated[
        int, typer.Option("-n", "--lines", min=1, max=10_000, help="How many to show.")
    ] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new ones until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls while following.")
    ] = 1.0,
    max_seconds: Annotated[
        float | None, typer.Option(hidden=True, help="Stop following after this long.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON lines, for scripts.")] = False,
) -> None:
    """The newest predictions of a deployment (shadow answers included), oldest first.

    Reads the log's segments and the journals of servers on this machine, so a
    prediction shows as soon as it has been answered.
    """
    settings = settings_from(ctx)
    with PredictionReader(settings, create_store=False) as reader:
        # read before the newest n: one logged in between is then printed by one of the two
        logged = _Logged.now(reader, deployment) if follow else _Logged(0, {})
        records = list(reversed(reader.tail(deployment, n)))
        if not records:
            _check_deployment(settings, deployment)
            if not json_:
                console.print(f"no predictions logged for {deployment} yet", markup=False)
        else:
            _print(records, json_, f"newest predictions of {deployment}")
        if follow:
            try:
                _follow(reader, deployment, records, logged, json_, interval, max_seconds)
            except KeyboardInterrupt:
                return
