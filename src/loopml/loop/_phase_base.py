"""What every phase of a deployment's loop shares: the context of one policy in one
tick, recording decisions, and closing a rollout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.governance import Identity
from loopml.loop import _records as records
from loopml.loop._policy import LoopPolicy
from loopml.loop._records import Decision, LoopState
from loopml.loop._window import Traffic
from loopml.registry import CHALLENGER, CHAMPION, GateReport, ModelRegistry, ModelVersion
from loopml.serving import Deployments, DeploymentSpec

if TYPE_CHECKING:
    from loopml.loop._controller import LoopController

__all__ = ["PhaseBase", "common_fields", "gates_json"]


def common_fields(spec: DeploymentSpec) -> dict[str, Any]:
    """What a new spec keeps from the current one: fallback, time limit, ONNX."""
    return {"fallback": spec.fallback, "timeout_ms": spec.timeout_ms, "onnx": spec.onnx}


def gates_json(report: GateReport) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "outcomes": [
            {
                "name": o.name,
                "kind": o.kind,
                "passed": o.passed,
                "value": o.value,
                "threshold": o.threshold,
                "message": o.message,
            }
            for o in report.outcomes
        ],
    }


class PhaseBase:
    """One deployment's loop in one tick; the phases extend it."""

    def __init__(
        self,
        controller: LoopController,
        policy: LoopPolicy,
        actor: Identity,
        registry: ModelRegistry,
        deployments: Deployments,
        traffic: Traffic,
    ) -> None:
        self.ctl = controller
        self.policy = policy
        self.name = policy.deployment
        self.actor = actor
        self.registry = registry
        self.deployments = deployments
        self.traffic = traffic
        self.now = controller.clock()
        self.decisions: list[Decision] = []

    def evaluating(self, data: dict[str, Any]) -> None:
        raise NotImplementedError  # the rollout phases

    # -- recording -----------------------------------------------------------------

    def record(
        self,
        kind: str,
        reason: str,
        evidence: dict[str, Any],
        *,
        candidate: str | None = None,
        champion: str | None = None,
        state: tuple[str, dict[str, Any]] | None = None,
    ) -> Decision:
        evidence = {**evidence, "operator": self.ctl.identity.name}
        decision = self.ctl.record(
            self.name,
            kind,
            reason,
            candidate=candidate,
            champion=champion,
            evidence=evidence,
            state=state,
        )
        self.decisions.append(decision)
        return decision

    def once(
        self,
        kind: str,
        reason: str,
        evidence: dict[str, Any],
        state: LoopState,
        data: dict[str, Any] | None = None,
    ) -> None:
        """A skip or an error, recorded unless the last decision says the same already."""
        last = self.ctl.read(lambda conn: records.last_decision(conn, self.name))
        same = (
            last is not None and last.kind == kind and last.evidence.get("code") == evidence["code"]
        )
        if same:
            if data is not None:
                self.ctl.save_state(self.name, state.state, data)
            return
        ro = (data or state.data).get("rollout") or {}
        self.record(
            kind,
            reason,
            evidence,
            candidate=ro.get("candidate"),
            champion=ro.get("champion"),
            state=None if data is None else (state.state, data),
        )

    def guard(self) -> None:
        """Before a side effect: stop unless this controller still holds the lease."""
        self.ctl.lease.check()

    def frozen_now(self) -> bool:
        """Whether the loop is frozen now (an operator may freeze it during a tick)."""
        return self.ctl.state(self.name).frozen or self.policy.guardrails.frozen

    def _loader(self) -> Any:
        return lambda ref: self.ctl.load_model(self.registry, ref)

    # -- the end of a rollout ----------------------------------------------------------

    def end(self, kind: str, reason: str, data: dict[str, Any], evidence: dict[str, Any]) -> None:
        """Close the rollout as ``reject``, ``rollback`` or ``error``: the champion serves
        alone again (from a canary of the candidate, or from a promotion that stopped half
        way and left the candidate serving alone, whose champion alias comes back too), and
        a candidate that lost is rejected in the registry."""
        ro = data["rollout"]
        champion, candidate_ref = ro["champion"], ro.get("candidate")
        spec = self.deployments.get(self.name).spec
        on_canary = spec.strategy == "canary" and spec.canary == candidate_ref
        alone = (  # only a promotion that stopped half way leaves the candidate alone
            kind == "rollback"
            and candidate_ref is not None
            and spec.strategy == "single"
            and spec.routes[0].model == candidate_ref
        )
        if on_canary or alone:
            self.guard()
            single = DeploymentSpec.single(champion, **common_fields(spec))
            self.deployments.deploy(self.name, single, reason=f"loop {kind}: {reason}")
        if candidate_ref is not None:
            candidate = self.registry.get(candidate_ref)
            aliases = self.registry.get_model(candidate.model).aliases
            if kind == "rollback" and aliases.get(CHAMPION) == candidate.version:
                self.guard()
                self.registry.promote(champion, reason=f"loop {kind} on {self.name}: {reason}")
            if kind in ("reject", "rollback"):
                self.guard()
                self.registry.reject(candidate.ref, f"loop {kind} on {self.name}: {reason}")
            self._drop_challenger(candidate)
        self.record(
            kind,
            reason,
            evidence,
            candidate=candidate_ref,
            champion=champion,
            state=("idle", self._idle_data(data)),
        )

    def _drop_challenger(self, candidate: ModelVersion) -> None:
        if self.registry.get_model(candidate.model).aliases.get(CHALLENGER) == candidate.version:
            self.guard()
            self.registry.remove_alias(
                candidate.model, CHALLENGER, reason=f"loop on {self.name}: done"
            )

    @staticmethod
    def _idle_data(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "rollout"}
