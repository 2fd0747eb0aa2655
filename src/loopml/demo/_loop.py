"""The demo's loop: its policy, and monitoring and the controller on the replay's clock.

At every tick the monitor brings the deployment's count windows up to date (drift of
each feature against the served version's training profile, performance from the labels
that came back) and the controller reads those samples, on the replay's clock: retrain
when the data drifted or the served model got worse, judge the candidate on traffic it
never saw, canary it, promote it or roll it back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.core import BackendError, Settings
from loopml.demo._pipeline import PIPELINE_REF
from loopml.demo._replay import FLIGHT_KEY
from loopml.loop import (
    CanaryStep,
    Evaluation,
    Guardrails,
    LoopController,
    LoopPolicy,
    Rollout,
    Sample,
    Triggers,
)
from loopml.monitoring import Monitor
from loopml.serving import PredictionLog

__all__ = ["DemoLoop", "TickRecord", "demo_policy"]

_DAY_S = 86_400.0
_HISTORY = 4  # windows per monitor report


def demo_policy(
    deployment: str,
    model: str,
    params: dict[str, Any],
    *,
    window_rows: int,
    cooldown_days: float,
) -> LoopPolicy:
    """Retrain on drift or a drop in ROC AUC; judge, canary and promote on ROC AUC."""
    return LoopPolicy(
        deployment=deployment,
        model=model,
        pipeline=PIPELINE_REF,
        pipeline_params=params,
        triggers=Triggers(
            drift_share=0.3,
            performance_drop=0.03,
            performance_metric="roc_auc",
            min_label_coverage=0.5,
        ),
        evaluation=Evaluation(
            metric="roc_auc",
            min_gain=0.0,
            window_rows=window_rows,
            min_rows=max(100, window_rows // 10),
            max_wait_s=14 * _DAY_S,
        ),
        rollout=Rollout(
            steps=(
                CanaryStep(0.2, predictions=window_rows // 5, seconds=2 * _DAY_S),
                CanaryStep(0.5, predictions=window_rows // 2, seconds=2 * _DAY_S),
            ),
            max_latency_ratio=None,  # both arms answer from one process: latency is noise
            max_quality_drop=0.03,
            min_labelled=max(100, window_rows // 10),
            min_rows=max(20, window_rows // 100),
            step_timeout_s=10 * _DAY_S,
            sticky_key=FLIGHT_KEY,  # the same flights reach the canary in every run
        ),
        guardrails=Guardrails(cooldown_s=cooldown_days * _DAY_S, max_retrains_per_day=1),
    )


@dataclass(frozen=True)
class TickRecord:
    """One tick: the replay's clock, the monitor's samples, the decisions made."""

    clock: dt.datetime
    samples: list[Sample]
    decisions: list[dict[str, Any]] = field(default_factory=list)


class _LatestSamples:
    """The controller's sample source: the report the monitor made this tick."""

    def __init__(self) -> None:
        self.latest: dict[str, list[Sample]] = {}

    def samples(self, deployment: str) -> Sequence[Sample]:
        return self.latest.get(deployment, [])


class DemoLoop:
    """Monitor and controller for one deployment, ticking on the replay's clock."""

    def __init__(self, settings: Settings, policy: LoopPolicy, window: str) -> None:
        self.policy = policy
        self.window = window
        self.now_ms = 0
        self.monitor = Monitor(settings)
        self._source = _LatestSamples()
        self.controller = LoopController(
            settings, policies=[policy], samples=self._source, clock=lambda: self.now_ms
        )
        self.ticks: list[TickRecord] = []
        self.seconds = {"monitor": 0.0, "controller": 0.0, "log": 0.0}
        self._log = PredictionLog(settings, durable=False)  # to read the server's segments

    def close(self) -> None:
        self.controller.close()
        self.monitor.close()
        self._log.close()

    def __enter__(self) -> DemoLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_log(self, prediction_id: str, timeout_s: float = 120.0) -> None:
        """Wait until the server's log shows ``prediction_id`` (the newest answer served)
        to other processes: the server seals its journal into segments every
        ``--segment-interval`` (0.2 s here), and a tick that read the log before then
        would see a different window (and so maybe decide differently) from one run to
        the next."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while self._log.find(prediction_id) is None:
            if time.monotonic() > deadline:
                raise BackendError(
                    f"prediction {prediction_id} served but not in the log after {timeout_s:g} s"
                )
            time.sleep(0.05)
        self.seconds["log"] += time.perf_counter() - started

    def tick(self, clock: dt.datetime) -> TickRecord:
        self.now_ms = int(clock.replace(tzinfo=dt.UTC).timestamp() * 1000)
        deployment = self.policy.deployment
        started = time.perf_counter()
        # The samples come from the current window and each version's newest labelled
        # one (labels lag two days: a window or two back); a short history spares
        # recomputing the drift of every older window at every tick.
        monitored = self.monitor.report(deployment, window=self.window, history=_HISTORY)
        samples: list[Sample] = list(monitored.samples())
        self._source.latest[deployment] = samples
        self.seconds["monitor"] += time.perf_counter() - started
        started = time.perf_counter()
        report = self.controller.tick()
        self.seconds["controller"] += time.perf_counter() - started
        record = TickRecord(clock, samples, [d.to_dict() for d in report.decisions])
        self.ticks.append(record)
        return record
