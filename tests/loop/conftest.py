"""A deployment to keep good: ``churn@1`` trained on data whose label follows ``a``,
served as ``churn-api``; then the world moves on and the label follows ``b``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loopml.core import Settings
from loopml.data import DataCatalog
from loopml.loop import (
    CanaryStep,
    Evaluation,
    Guardrails,
    LoopController,
    LoopPolicy,
    Rollout,
    Triggers,
)
from loopml.pipelines import run_pipeline
from loopml.serving import Deployments, DeploymentSpec
from tests.loop import loop_pipes
from tests.loop.helpers import Clock, Samples, rows

PIPELINE = "tests.loop.loop_pipes:train"


@dataclass
class World:
    settings: Settings
    clock: Clock
    samples: Samples
    deployment: str = "churn-api"

    def policy(self, **changes: Any) -> LoopPolicy:
        values: dict[str, Any] = {
            "deployment": self.deployment,
            "model": "churn",
            "pipeline": PIPELINE,
            "pipeline_params": {},
            "triggers": Triggers(drift_share=0.3),
            "evaluation": Evaluation(
                metric="roc_auc", min_gain=0.01, window_rows=2000, min_rows=100
            ),
            "rollout": Rollout(
                steps=(CanaryStep(0.3, predictions=40), CanaryStep(0.7, predictions=40)),
                min_rows=20,
                min_labelled=40,
                max_latency_ratio=None,
            ),
            "guardrails": Guardrails(cooldown_s=3600, max_retrains_per_day=3),
        }
        values.update(changes)
        return LoopPolicy(**values)

    def controller(self, policy: LoopPolicy | None = None, **options: Any) -> LoopController:
        return LoopController(
            self.settings,
            policies=[policy or self.policy()],
            samples=self.samples,
            clock=self.clock,
            **options,
        )


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with DataCatalog(settings) as catalog:
        catalog.ingest(rows(600, rule="a", seed=1), name="events")
    first = run_pipeline(loop_pipes.train, settings=settings)
    assert first.status == "succeeded", first.error
    with Deployments(settings) as deployments:
        deployments.deploy("churn-api", DeploymentSpec.single("churn@1"), reason="launch")
    with DataCatalog(settings) as catalog:  # the freshest data: the label follows b now
        catalog.ingest(rows(600, rule="b", seed=2), name="events")
    yield World(settings, Clock(), Samples())


@pytest.fixture
def tick(world: World) -> Callable[..., Any]:
    """``tick(policy=None)``: one pass of a fresh controller, as `loopml loop tick` does."""

    def run(policy: LoopPolicy | None = None) -> Any:
        with world.controller(policy) as controller:
            return controller.tick()

    return run
