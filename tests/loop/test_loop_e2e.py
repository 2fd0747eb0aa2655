"""The loop end to end with real parts: a drift retrains through a real pipeline, the
candidate is judged on labelled traffic it never trained on, canaried and promoted, or
rejected, or rolled back; every decision is in the audit log."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from loopml.governance import list_audit, verify_audit
from loopml.loop import CanaryStep, Rollout
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, route
from loopml.store import open_store
from tests.loop.conftest import World
from tests.loop.helpers import rows, serve_and_label


def _kinds(world: World) -> list[str]:
    with world.controller() as controller:
        return [d.kind for d in reversed(controller.history())]


def _served(world: World) -> Any:
    with Deployments(world.settings) as deployments:
        return deployments.get(world.deployment).spec


def _audit_actions(world: World) -> list[tuple[str, str]]:
    store = open_store(world.settings.db_url)
    try:
        with store.read() as conn:
            assert verify_audit(conn).ok
            return [(e.actor, e.action) for e in reversed(list_audit(conn, limit=10_000))]
    finally:
        store.close()


def test_drift_retrains_canaries_and_promotes(world: World, tick: Callable[..., Any]) -> None:
    assert tick().decisions == []  # no drift: nothing to do
    world.samples.drift("churn-api", 0.5, {"a": True, "b": False})
    report = tick()
    [retrain] = report.decisions
    assert retrain.kind == "retrain" and "50% of features drifted (a)" in retrain.reason
    assert retrain.champion == "churn@1" and retrain.evidence["drift"]["drifted_features"] == ["a"]
    assert report.states["churn-api"] == "evaluating"  # no labelled traffic after the cut-off yet
    with ModelRegistry(world.settings) as registry:
        assert registry.get("churn@challenger").ref == "churn@2"

    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    [canary] = tick().decisions
    assert canary.kind == "canary" and canary.candidate == "churn@2"
    evaluation = canary.evidence["evaluation"]
    assert evaluation["rows"] == 300 and evaluation["candidate"] > evaluation["champion"] + 0.2
    assert canary.evidence["gates"]["passed"] is True
    spec = _served(world)
    assert (spec.strategy, spec.primary, spec.canary, spec.canary_weight) == (
        "canary",
        "churn@1",
        "churn@2",
        0.3,
    )

    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=11), seed=1)
    [step] = tick().decisions
    assert step.kind == "canary" and "step 1 healthy" in step.reason
    assert _served(world).canary_weight == 0.7
    samples = {(s["name"], s["labels"]["model_version"]) for s in step.evidence["samples"]}
    assert ("loopml_error_rate", "churn@2") in samples and (
        "loopml_window_rows",
        "churn@1",
    ) in samples

    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=12), seed=2)
    [promote] = tick().decisions
    assert promote.kind == "promote" and promote.candidate == "churn@2"
    spec = _served(world)
    assert spec.strategy == "single" and spec.routes[0].model == "churn@2"
    with ModelRegistry(world.settings) as registry:
        assert registry.get("churn@champion").ref == "churn@2"
        assert "challenger" not in registry.get_model("churn").aliases

    assert _kinds(world) == ["retrain", "canary", "canary", "promote"]
    actions = _audit_actions(world)
    loop_rows = [a for a in actions if a[1].startswith("loop.")]
    assert loop_rows == [
        ("loop-controller", f"loop.{k}") for k in ["retrain", "canary", "canary", "promote"]
    ]
    # the changes the controller made are its own, under its service name
    assert ("loop-controller", "deployment.deploy") in actions
    assert ("loop-controller", "deployment.weight") in actions
    assert ("loop-controller", "model.alias") in actions


def test_a_candidate_that_loses_is_rejected(world: World, tick: Callable[..., Any]) -> None:
    policy = world.policy(pipeline_params={"estimator": "dummy"})
    world.samples.drift("churn-api", 0.6)
    assert [d.kind for d in tick(policy).decisions] == ["retrain"]
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    [reject] = tick(policy).decisions
    assert reject.kind == "reject" and "does not beat champion on roc_auc" in reject.reason
    assert _served(world).routes[0].model == "churn@1"  # never served
    with ModelRegistry(world.settings) as registry:
        [decision] = registry.approvals("churn@2")
        assert decision.decision == "rejected" and decision.actor == "loop-controller"
        assert "challenger" not in registry.get_model("churn").aliases


def test_a_canary_that_does_worse_is_rolled_back(world: World, tick: Callable[..., Any]) -> None:
    """The drift was passing: once the canary runs, labels follow ``a`` again and the
    candidate (trained on ``b``) does worse than the champion beside it."""
    world.samples.drift("churn-api", 0.6)
    tick()
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    assert [d.kind for d in tick().decisions] == ["canary"]
    serve_and_label(world.settings, "churn-api", rows(300, rule="a", seed=20), seed=3)
    [rollback] = tick().decisions
    assert rollback.kind == "rollback" and "trails the champion" in rollback.reason
    assert rollback.evidence["quality"]["candidate_rows"] >= 40
    spec = _served(world)
    assert spec.strategy == "single" and spec.routes[0].model == "churn@1"
    with ModelRegistry(world.settings) as registry:
        assert registry.approvals("churn@2")[-1].decision == "rejected"
        assert "champion" not in registry.get_model("churn").aliases  # never promoted
    assert _kinds(world) == ["retrain", "canary", "rollback"]


def test_a_canary_step_can_last_a_duration_in_the_injected_clock(
    world: World, tick: Callable[..., Any]
) -> None:
    policy = world.policy(
        rollout=Rollout(steps=(CanaryStep(0.5, seconds=3600),), min_rows=20, min_labelled=40)
    )
    world.samples.drift("churn-api", 0.6)
    tick(policy)
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    assert [d.kind for d in tick(policy).decisions] == ["canary"]
    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=11), seed=1)
    assert tick(policy).decisions == []  # healthy, but the hour has not passed
    world.clock.advance(3601)
    assert [d.kind for d in tick(policy).decisions] == ["promote"]


def test_a_sticky_canary_keeps_each_caller_on_its_arm(
    world: World, tick: Callable[..., Any]
) -> None:
    """With ``rollout.sticky_key`` the canary routes by that field: the same callers reach
    the canary whenever they come back, and a larger weight only adds callers to it."""
    policy = world.policy(
        rollout=Rollout(
            steps=(CanaryStep(0.3, predictions=50), CanaryStep(0.7, predictions=50)),
            min_rows=20,
            min_labelled=40,
            sticky_key="customer",
        )
    )
    world.samples.drift("churn-api", 0.6)
    tick(policy)
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    assert [d.kind for d in tick(policy).decisions] == ["canary"]
    spec = _served(world)
    assert (spec.strategy, spec.sticky_key, spec.canary_weight) == ("canary", "customer", 0.3)

    def arms() -> dict[str, str]:
        with Deployments(world.settings) as deployments:
            current = deployments.get(world.deployment).spec
        rng = random.Random(0)  # ignored for a request with a key
        return {key: route(current, key, rng).primary for key in map(str, range(200))}

    first = arms()
    assert 30 < sum(arm == "churn@2" for arm in first.values()) < 90
    serve_and_label(world.settings, "churn-api", rows(200, rule="b", seed=11), seed=1)
    assert [d.kind for d in tick(policy).decisions] == ["canary"]
    assert _served(world).canary_weight == 0.7
    second = arms()
    assert all(second[key] == "churn@2" for key, arm in first.items() if arm == "churn@2")
