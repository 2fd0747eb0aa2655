"""Guardrails: a cooldown between retrains, a daily maximum, freezing; a skip is recorded
once when a trigger fires and a guardrail stops it, not on every tick."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.governance import list_audit
from loopml.loop import Evaluation, Guardrails
from loopml.pipelines import run_pipeline
from loopml.serving import Deployments, DeploymentSpec
from loopml.store import open_store
from tests.loop import loop_pipes
from tests.loop.conftest import World
from tests.loop.helpers import rows, serve_and_label


def _kinds(world: World) -> list[str]:
    with world.controller() as controller:
        return [d.kind for d in reversed(controller.history())]


def _quick_reject(world: World, **guardrails: Any) -> Any:
    """A policy whose candidate is rejected when no labels come within a minute."""
    return world.policy(
        evaluation=Evaluation(min_rows=10, window_rows=100, max_wait_s=60),
        guardrails=Guardrails(**guardrails),
    )


def test_cooldown_skips_once_then_lets_the_next_retrain_through(
    world: World, tick: Callable[..., Any]
) -> None:
    policy = _quick_reject(world, cooldown_s=3600)
    world.samples.drift("churn-api", 0.6)
    assert [d.kind for d in tick(policy).decisions] == ["retrain"]
    world.clock.advance(61)
    assert [d.kind for d in tick(policy).decisions] == ["reject"]
    [skip] = tick(policy).decisions  # the drift is still there
    assert skip.kind == "skip" and skip.reason.startswith("cooldown: last retrain 61 s ago")
    assert (
        skip.evidence["code"] == "cooldown" and skip.evidence["triggers"][0]["trigger"] == "drift"
    )
    world.clock.advance(600)
    assert tick(policy).decisions == []  # the same skip again is not recorded
    world.clock.advance(3000)
    assert [d.kind for d in tick(policy).decisions] == ["retrain"]
    assert _kinds(world) == ["retrain", "reject", "skip", "retrain"]


def test_at_most_so_many_retrains_a_day(world: World, tick: Callable[..., Any]) -> None:
    policy = _quick_reject(world, cooldown_s=0, max_retrains_per_day=2)
    world.samples.drift("churn-api", 0.6)
    for _ in range(2):
        tick(policy)
        world.clock.advance(61)
        assert [d.kind for d in tick(policy).decisions] == ["reject"]
    [skip] = tick(policy).decisions
    assert skip.kind == "skip" and skip.evidence["code"] == "max_per_day"
    assert "2 retrains in the last 24 h (max_retrains_per_day 2)" in skip.reason
    world.clock.advance(86_400)
    assert [d.kind for d in tick(policy).decisions] == ["retrain"]


def test_a_frozen_loop_does_nothing_until_unfrozen(world: World, tick: Callable[..., Any]) -> None:
    world.samples.drift("churn-api", 0.6)
    with world.controller() as controller:
        assert controller.freeze("churn-api", reason="quarter close").frozen
    [skip] = tick().decisions
    assert skip.kind == "skip" and "frozen for churn-api: quarter close" in skip.reason
    with world.controller() as controller:
        assert not controller.unfreeze("churn-api").frozen
    assert [d.kind for d in tick().decisions] == ["retrain"]
    # frozen mid-rollout: the rollout holds where it is
    with world.controller() as controller:
        controller.freeze("churn-api")
    serve_and_label(world.settings, "churn-api", rows(300, rule="b", seed=10))
    assert tick().decisions == []
    with world.controller() as controller:
        assert controller.state("churn-api").state == "evaluating"
        controller.unfreeze("churn-api")
    assert [d.kind for d in tick().decisions] == ["canary"]
    store = open_store(world.settings.db_url)
    try:
        with store.read() as conn:
            actions = [e.action for e in list_audit(conn, action="loop.*", limit=100)]
    finally:
        store.close()
    assert actions.count("loop.freeze") == 2 and actions.count("loop.unfreeze") == 2


def test_a_policy_can_be_frozen_in_its_guardrails(world: World, tick: Callable[..., Any]) -> None:
    world.samples.drift("churn-api", 0.6)
    [skip] = tick(world.policy(guardrails=Guardrails(frozen=True))).decisions
    assert skip.kind == "skip" and "guardrails.frozen" in skip.reason


def test_the_loop_starts_only_from_a_single_deployment(
    world: World, tick: Callable[..., Any]
) -> None:
    assert run_pipeline(loop_pipes.train, settings=world.settings).status == "succeeded"
    with Deployments(world.settings) as deployments:  # someone's own canary of churn@2
        deployments.deploy("churn-api", DeploymentSpec.canary_of("churn@1", "churn@2", 0.1))
    world.samples.drift("churn-api", 0.6)
    [skip] = tick().decisions
    assert skip.kind == "skip" and skip.evidence["code"] == "not_single"
