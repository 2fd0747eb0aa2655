"""``run_demo``: the whole story, from the first model to the report.

1. Ingest January-February (the first version of the labelled data) and run the training
   pipeline: the first model, gated, promoted to champion and deployed.
2. Start ``loopml serve`` and replay March onwards through it day by day; labels follow
   two days later; every week the monitor and the loop controller act on the replay's
   clock, and the label feed (``labelled.parquet``) holds every label that has arrived.
3. Score the static first model and the monthly oracle on the same flights, offline.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.core import Settings, ValidationError
from loopml.demo._baselines import Floats, oracle_scores, scores_of
from loopml.demo._flights import FEATURES, TARGET, TIME, load_flights
from loopml.demo._loop import DemoLoop, TickRecord, demo_policy
from loopml.demo._pipeline import flight_delay_training, labelled_path
from loopml.demo._replay import Replay, ReplayOptions, ServedTraffic, TrafficClient
from loopml.demo._server import LiveServer
from loopml.loop import LoopController
from loopml.registry import ModelRegistry, model_lineage
from loopml.serving import Deployments, DeploymentSpec

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

Say = Callable[[str], None]
_NO_RETRAIN = ("evaluating", "canary")  # controller states whose tick runs no training


@dataclass(frozen=True)
class DemoOptions:
    """What to replay and how. ``fast()`` is the CI-sized run."""

    sample: float | None = None
    train_months: int = 2
    last_month: int = 12
    batch_rows: int = 1000
    label_delay_days: int = 2
    tick_days: int = 3
    window_rows: int = 5000
    cooldown_days: float = 35.0
    max_iter: int = 100
    seed: int = 0
    name: str | None = None  # deployment name; default: flights, flights-2, ...

    @classmethod
    def fast(cls, **overrides: Any) -> DemoOptions:
        values: dict[str, Any] = {
            "sample": 0.1,
            "last_month": 7,
            "batch_rows": 500,
            "tick_days": 7,  # a tick's monitor pass costs about the same at any sample size
            "window_rows": 1000,
            "max_iter": 60,
        }
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 1 <= self.train_months < self.last_month <= 12:
            raise ValidationError(
                "train_months and last_month must satisfy 1 <= train_months < last_month "
                f"<= 12; got {self.train_months} and {self.last_month}"
            )


@dataclass
class DemoResult:
    names: dict[str, str]
    replay: pd.DataFrame
    scores: dict[str, Floats]
    served: ServedTraffic
    oracle_retrains: int
    ticks: list[TickRecord]
    decisions: list[dict[str, Any]]
    first_model: str
    champion: str
    lineage: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def retrains(self) -> int:
        return sum(1 for d in self.decisions if d["kind"] == "retrain")


def _names(settings: Settings, wanted: str | None) -> dict[str, str]:
    """Deployment, model and dataset names no earlier demo in this home used."""
    with Deployments(settings) as deployments:
        taken = {d.name for d in deployments.list()}
    if wanted is not None:
        if wanted in taken:
            raise ValidationError(
                f"deployment {wanted!r} exists already in {settings.home}: pick another --name"
            )
        base = wanted
    else:
        base = next(
            n for n in ("flights", *(f"flights-{i}" for i in range(2, 10_000))) if n not in taken
        )
    suffix = base.removeprefix("flights")
    return {
        "deployment": base,
        "model": f"flight-delay{suffix}" if base.startswith("flights") else f"{base}-model",
        "dataset": f"flights-labelled{suffix}" if base.startswith("flights") else f"{base}-data",
    }


class _LabelFeed:
    """The label feed: every labelled flight so far, as one Parquet file.

    Labels arrive in replay order, so the labelled flights are always the training
    months plus a prefix of the replay: the file is a slice of one Arrow table, written
    whole and renamed into place (a reader never sees half a file).
    """

    def __init__(self, path: Path, history: pd.DataFrame, replay: pd.DataFrame) -> None:
        columns = [*FEATURES, TARGET, TIME]
        frame = pd.concat([history[columns], replay[columns]], ignore_index=True)
        self.table = pa.Table.from_pandas(frame, preserve_index=False)
        self.history_rows = len(history)
        self.path = path
        self.written = -1

    def write(self, labelled: int) -> None:
        rows = self.history_rows + labelled
        if rows == self.written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        pq.write_table(self.table.slice(0, rows), partial, compression="none")
        partial.replace(self.path)
        self.written = rows


def _first_model(settings: Settings, names: dict[str, str], params: dict[str, Any]) -> str:
    record = flight_delay_training.run(params=params, settings=settings, started_by="demo")
    if record.status != "succeeded":
        raise ValidationError(f"the first training run failed: {record.error}")
    with ModelRegistry(settings) as registry:
        first = registry.versions(names["model"])[-1]
        registry.promote(first.ref, reason="demo: the first model, trained on Jan-Feb")
    with Deployments(settings) as deployments:
        deployments.deploy(
            names["deployment"],
            # Batches of a thousand records on a busy two-core machine: allow a minute.
            DeploymentSpec.single(first.ref, timeout_ms=60_000),
            reason="demo: serve the first model",
        )
    return first.ref


def run_demo(
    settings: Settings,
    options: DemoOptions,
    *,
    say: Say = lambda _text: None,
    advance: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> DemoResult:
    """Run the demo on the store ``settings`` names; see the module doc."""
    LoopController(settings).acting()  # approver or admin: refuse before changing anything
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    names = _names(settings, options.name)
    flights = load_flights(options.sample, seed=options.seed)
    flights = flights[flights["month"] <= options.last_month]
    history = flights[flights["month"] <= options.train_months].reset_index(drop=True)
    replay = flights[flights["month"] > options.train_months].reset_index(drop=True)
    if on_total is not None:
        on_total(len(replay))
    feed = labelled_path(settings).with_name(f"labelled-{names['deployment']}.parquet")
    labels = _LabelFeed(feed, history, replay)
    labels.write(0)
    params = {
        "source": str(feed),
        "dataset": names["dataset"],
        "model": names["model"],
        "max_iter": options.max_iter,
        "seed": options.seed,
    }
    say(
        f"{len(flights):,} departed flights ({'a sample' if options.sample else 'all'}); "
        f"training the first model on {len(history):,} flights of months 1-"
        f"{options.train_months}"
    )
    first = _first_model(settings, names, params)
    seconds["first_model"] = time.perf_counter() - started
    say(f"{first} is champion and serves deployment {names['deployment']!r}")

    policy = demo_policy(
        names["deployment"],
        names["model"],
        params,
        window_rows=options.window_rows,
        cooldown_days=options.cooldown_days,
    )
    replay_options = ReplayOptions(
        batch_rows=options.batch_rows,
        label_delay_days=options.label_delay_days,
        tick_days=options.tick_days,
    )
    log_path = Path(settings.home) / "demo" / f"server-{names['deployment']}.log"
    window = f"{options.window_rows}rows"
    with (
        DemoLoop(settings, policy, window) as loop,
        LiveServer(settings, names["deployment"], log_path) as server,
    ):
        client = TrafficClient(server.url, names["deployment"])
        runner = Replay(replay, client, replay_options)
        revision = server.wait_for_revision(None)

        def on_tick(clock: dt.datetime, current: Replay) -> None:
            nonlocal revision
            # Only a tick that may retrain reads the feed: while a candidate is judged or
            # in canary, rewriting the whole file (every label so far) is wasted.
            if loop.controller.state(names["deployment"]).state not in _NO_RETRAIN:
                labels.write(current.labelled_count)
            if current.last_prediction_id is not None:
                loop.wait_for_log(current.last_prediction_id)
            record = loop.tick(clock)
            for decision in record.decisions:
                say(f"{clock:%Y-%m-%d} {decision['kind']}: {decision['reason']}")
            with Deployments(settings) as deployments:
                wanted = deployments.get(names["deployment"]).revision
            if wanted != revision:
                revision = server.wait_for_revision(wanted)

        tick_started = time.perf_counter()
        try:
            served = runner.run(on_tick, advance)
        finally:
            client.close()
        seconds["replay"] = time.perf_counter() - tick_started
        seconds.update(runner.seconds)
        seconds.update(loop.seconds)

    baseline_started = time.perf_counter()
    with ModelRegistry(settings) as registry:
        static = scores_of(registry.load(first), replay)
        champion = registry.get(f"{names['model']}@champion")
        lineage = model_lineage(settings, champion)
    oracle = oracle_scores(history, replay, max_iter=options.max_iter, seed=options.seed)
    seconds["baselines"] = time.perf_counter() - baseline_started
    with LoopController(settings) as controller:
        decisions = [d.to_dict() for d in controller.history(names["deployment"], limit=10_000)]
    decisions.reverse()  # oldest first
    seconds["total"] = time.perf_counter() - started
    return DemoResult(
        names=names,
        replay=replay,
        scores={
            "static": static,
            "loop": served.probability.astype(np.float64),
            "oracle": oracle.scores,
        },
        served=served,
        oracle_retrains=oracle.retrains,
        ticks=loop.ticks,
        decisions=decisions,
        first_model=first,
        champion=champion.ref,
        lineage=lineage,
        seconds=seconds,
    )
