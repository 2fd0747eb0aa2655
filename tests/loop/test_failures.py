"""A rollout never sticks and never acts on stale facts: a metric the model cannot compute
rejects at once, errors that persist end the rollout, a freeze set during training holds
before any deploy, an operator's deploy is not overwritten, and a promotion that stopped
half way is finished, never rolled back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopml.core import BackendError, Settings, ValidationError
from loopml.loop import Evaluation, LoopController, Rollout
from loopml.pipelines import run_pipeline
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, DeploymentSpec
from tests.loop import loop_pipes
from tests.loop.conftest import World
from tests.loop.helpers import rows, serve_and_label


def _served(world: World) -> Any:
    with Deployments(world.settings) as deployments:
        return deployments.get(world.deployment).spec


def _champion(world: World) -> str:
    with ModelRegistry(world.settings) as registry:
        return registry.get("churn@champion").ref


def _state(world: World) -> Any:
    with world.controller() as controller:
        return controller.state(world.deployment)


def _to_last_canary_step(world: World, tick: Callable[..., Any]) -> None:
    """Retrain, canary at 30%, then 70%: the next healthy tick promotes churn@2."""
    world.samples.drift("churn-api", 0.5)
    tick()
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    assert [d.kind for d in tick().decisions] == ["canary"]
    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=11), seed=1)
    assert [d.kind for d in tick().decisions] == ["canary"]
    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=12), seed=2)


def _failing_rollout(world: World) -> Any:
    """Any canary criterion fails now: p95 latency can never be under a nanosecond."""
    steps = world.policy().rollout.steps
    return world.policy(
        rollout=Rollout(
            steps=steps,
            min_rows=20,
            min_labelled=40,
            max_latency_ratio=None,
            max_latency_p95_ms=1e-6,
        )
    )


def test_a_metric_the_model_does_not_compute_rejects_at_once(
    world: World, tick: Callable[..., Any]
) -> None:
    policy = world.policy(
        evaluation=Evaluation(metric="mae", min_gain=0.0, window_rows=2000, min_rows=100)
    )
    world.samples.drift("churn-api", 0.5)
    tick(policy)
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    [reject] = tick(policy).decisions
    assert reject.kind == "reject" and reject.candidate == "churn@2"
    assert "cannot be evaluated: metric 'mae' is not computed for churn@2" in reject.reason
    assert _state(world).state == "idle" and _served(world).routes[0].model == "churn@1"


def test_an_error_that_persists_ends_the_evaluation(
    world: World, tick: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    world.samples.drift("churn-api", 0.5)
    tick()
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    with ModelRegistry(world.settings) as registry:
        digest = registry.get("churn@2").artifact.rpartition(":")[2]
    [blob] = [p for p in Path(world.settings.artifacts_url).rglob(digest) if p.is_file()]
    blob.write_bytes(b"not the model any more")  # every load fails its digest check now
    caplog.set_level(logging.WARNING, logger="loopml.loop")
    [error] = tick().decisions
    assert error.kind == "error" and error.evidence["code"] == "IntegrityError"
    assert _state(world).state == "evaluating"
    # an expected error is one line in the log, no traceback
    logged = [r for r in caplog.records if "IntegrityError" in r.getMessage()]
    assert logged and all(r.exc_info is None for r in logged)
    world.clock.advance(8 * 86400)  # past evaluation.max_wait_s (7 days)
    [reject] = tick().decisions
    assert reject.kind == "reject" and "evaluating failed 2 tick(s) in a row" in reject.reason
    assert "IntegrityError" in reject.reason and _state(world).state == "idle"


def test_a_freeze_set_while_training_holds_before_any_deploy(
    world: World, tick: Callable[..., Any]
) -> None:
    policy = world.policy(
        pipeline="tests.loop.loop_pipes:train_frozen_meanwhile", cutoff_param="cutoff_ms"
    )
    serve_and_label(world.settings, "churn-api", rows(50, rule="b", seed=9))
    world.samples.drift("churn-api", 0.5)
    report = tick(policy)
    assert [d.kind for d in report.decisions] == ["retrain"]
    assert report.states["churn-api"] == "evaluating"
    assert _state(world).frozen and _served(world).strategy == "single"
    assert _served(world).routes[0].model == "churn@1"
    with world.controller(policy) as controller:
        controller.unfreeze("churn-api")
    assert [d.kind for d in tick(policy).decisions] == ["canary"]


def test_a_deploy_made_while_the_candidate_waits_ends_the_rollout(
    world: World, tick: Callable[..., Any]
) -> None:
    world.samples.drift("churn-api", 0.5)
    tick()  # churn@2 waits for labelled traffic
    run_pipeline(loop_pipes.train, settings=world.settings)  # an operator's hotfix: churn@3
    with Deployments(world.settings) as deployments:
        deployments.deploy("churn-api", DeploymentSpec.single("churn@3"), reason="hotfix")
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    [ended] = tick().decisions
    assert ended.kind == "error" and ended.evidence["code"] == "deployment_changed"
    assert "deployment changed under the loop: churn-api serves single churn@3" in ended.reason
    spec = _served(world)
    assert spec.strategy == "single" and spec.routes[0].model == "churn@3"
    assert _state(world).state == "idle"
    with ModelRegistry(world.settings) as registry:
        assert "challenger" not in registry.get_model("churn").aliases


def test_a_promotion_that_stopped_half_way_is_finished(
    world: World, tick: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _to_last_canary_step(world, tick)
    record = LoopController.record

    def database_away_for_promote(
        self: LoopController, deployment: str, kind: str, *a: Any, **k: Any
    ) -> Any:
        if kind == "promote":  # the decision's write is the last step of a promotion
            raise BackendError("database went away for a moment")
        return record(self, deployment, kind, *a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(LoopController, "record", database_away_for_promote)
        [error] = tick().decisions
    assert error.kind == "error" and _champion(world) == "churn@2"
    serve_and_label(world.settings, "churn-api", rows(100, rule="b", seed=13), seed=3)
    [promote] = tick(_failing_rollout(world)).decisions  # not judged again: finished
    assert promote.kind == "promote" and promote.candidate == "churn@2"
    spec = _served(world)
    assert spec.strategy == "single" and spec.routes[0].model == "churn@2"
    with ModelRegistry(world.settings) as registry:
        assert registry.approvals("churn@2") == []
        assert _champion(world) == "churn@2"


def test_a_rollback_while_the_candidate_serves_alone_restores_the_champion(
    world: World, tick: Callable[..., Any]
) -> None:
    _to_last_canary_step(world, tick)
    with ModelRegistry(world.settings) as registry:  # the candidate is champion, alone
        registry.promote("churn@2", reason="by hand")
    with Deployments(world.settings) as deployments:
        deployments.deploy("churn-api", DeploymentSpec.single("churn@2"), reason="by hand")
    [rollback] = tick(_failing_rollout(world)).decisions
    assert rollback.kind == "rollback"
    spec = _served(world)
    assert spec.strategy == "single" and spec.routes[0].model == "churn@1"
    assert _champion(world) == "churn@1"


@pytest.mark.parametrize("limit", [0, -1])
def test_history_refuses_a_limit_below_one(settings: Settings, limit: int) -> None:
    with (
        LoopController(settings, policies=[]) as controller,
        pytest.raises(ValidationError, match=f"limit must be a whole number >= 1; got {limit}"),
    ):
        controller.history(limit=limit)
