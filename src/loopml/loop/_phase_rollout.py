"""The evaluating and canary phases, and promotion."""

from __future__ import annotations

from typing import Any

from loopml.loop._evaluate import compare
from loopml.loop._phase_base import PhaseBase, common_fields, gates_json
from loopml.loop._records import LoopState
from loopml.loop._rollout import judge_canary
from loopml.loop._window import ops_stats
from loopml.serving import DeploymentSpec

__all__ = ["RolloutPhases"]


class RolloutPhases(PhaseBase):
    """``evaluating`` (candidate vs champion, gates), ``canary`` (steps), then promote."""

    # -- evaluating --------------------------------------------------------------------

    def evaluating(self, data: dict[str, Any]) -> None:
        ro = data["rollout"]
        evaluation = self.policy.evaluation
        candidate, champion = self.registry.get(ro["candidate"]), self.registry.get(ro["champion"])
        window = self.traffic.records(self.name, ro["cutoff_ms"])
        labelled = self.traffic.labelled(self.name, window, ro["labels_since_ms"])
        evidence: dict[str, Any] = {
            "cutoff_ms": ro["cutoff_ms"],
            "pipeline_run": ro["pipeline_run"],
            "labelled_rows": len(labelled),
        }
        if len(labelled) < evaluation.min_rows:
            if self.now - ro["eval_started_ms"] > evaluation.max_wait_s * 1000:
                self.end(
                    "reject",
                    f"only {len(labelled)} labelled predictions after the cut-off "
                    f"within {evaluation.max_wait_s:g} s (need {evaluation.min_rows})",
                    data,
                    evidence,
                )
            return
        load = self._loader()
        result = compare(evaluation, labelled, candidate, champion, load)
        evidence["evaluation"] = result.to_dict()
        if not result.passed:
            self.end("reject", result.reason, data, evidence)
            return
        evidence["gates"] = gates_json(self.registry.evaluate_gates(candidate.ref))
        blockers = self.registry.promotion_blockers(candidate.ref)
        evidence["blockers"] = blockers
        hard = [b for b in blockers if not b.startswith("approval required")]
        if hard:
            self.end(
                "reject", f"{result.reason}; but gates fail: {'; '.join(hard)}", data, evidence
            )
            return
        first = self.policy.rollout.steps[0]
        current = self.deployments.get(self.name)
        spec = current.spec
        if not (spec.strategy == "canary" and spec.canary == candidate.ref):
            spec = DeploymentSpec.canary_of(
                champion.ref, candidate.ref, first.weight, **common_fields(spec)
            )
            self.deployments.deploy(self.name, spec, reason=f"loop canary: {result.reason}")
        mark = self.traffic.watermark(self.name)
        ro.update(step=0, step_started_ms=self.now, step_after_ms=mark, canary_after_ms=mark)
        steps = len(self.policy.rollout.steps)
        self.record(
            "canary",
            f"{result.reason}; canary at {first.weight:.0%} (step 1 of {steps})",
            evidence,
            candidate=candidate.ref,
            champion=champion.ref,
            state=("canary", data),
        )

    # -- canary ------------------------------------------------------------------------

    def canary(self, data: dict[str, Any]) -> None:
        ro = data["rollout"]
        rollout = self.policy.rollout
        k = min(int(ro["step"]), len(rollout.steps) - 1)
        step = rollout.steps[k]
        candidate, champion = self.registry.get(ro["candidate"]), self.registry.get(ro["champion"])
        recent = self.traffic.records(self.name, ro["step_after_ms"])
        ops = {v.ref: ops_stats(recent, v.ref) for v in (candidate, champion)}
        since_canary = self.traffic.records(self.name, ro["canary_after_ms"])
        labelled = self.traffic.labelled(self.name, since_canary, ro["labels_since_ms"])
        health = judge_canary(
            rollout,
            self.policy.evaluation.metric,
            self.name,
            ops,
            labelled,
            candidate,
            champion,
            self._loader(),
        )
        evidence = {
            "step": k + 1,
            "weight": step.weight,
            "samples": health.samples,
            "quality": health.quality,
        }
        if health.failures:
            self.end("rollback", "; ".join(health.failures), data, evidence)
            return
        rows = int(ops[candidate.ref].get("rows", 0))
        elapsed_s = (self.now - ro["step_started_ms"]) / 1000
        done = (step.predictions is not None and rows >= step.predictions) or (
            step.seconds is not None and elapsed_s >= step.seconds
        )
        if not done or rows < rollout.min_rows:
            if rows < rollout.min_rows and elapsed_s > rollout.step_timeout_s:
                self.end(
                    "rollback",
                    f"the canary served only {rows} predictions in {elapsed_s:.0f} s "
                    f"(needs {rollout.min_rows})",
                    data,
                    evidence,
                )
            return
        healthy = f"step {k + 1} healthy after {rows} canary predictions and {elapsed_s:.0f} s"
        if k + 1 >= len(rollout.steps):
            self.promote(data, evidence, healthy)
            return
        nxt = rollout.steps[k + 1]
        if self.deployments.get(self.name).spec.canary_weight != nxt.weight:
            self.deployments.set_canary_weight(self.name, nxt.weight, reason=f"loop: {healthy}")
        mark = self.traffic.watermark(self.name)
        ro.update(step=k + 1, step_started_ms=self.now, step_after_ms=mark)
        self.record(
            "canary",
            f"{healthy}; canary at {nxt.weight:.0%} (step {k + 2} of {len(rollout.steps)})",
            evidence,
            candidate=candidate.ref,
            champion=champion.ref,
            state=("canary", data),
        )

    def promote(self, data: dict[str, Any], evidence: dict[str, Any], healthy: str) -> None:
        ro = data["rollout"]
        candidate = self.registry.get(ro["candidate"])
        blockers = self.registry.promotion_blockers(candidate.ref)
        if blockers and all(b.startswith("approval required") for b in blockers):
            waiting = ro.setdefault("approval_wait_ms", self.now)
            if self.now - waiting > self.policy.rollout.approval_timeout_s * 1000:
                self.end(
                    "rollback",
                    f"no approval within {self.policy.rollout.approval_timeout_s:g} s: "
                    + "; ".join(blockers),
                    data,
                    evidence,
                )
                return
            state = LoopState(self.name, "canary", data)
            self.once(
                "skip",
                f"{healthy}; waiting for approval: {'; '.join(blockers)}",
                {**evidence, "code": "awaiting_approval"},
                state,
                data,
            )
            return
        if blockers:
            self.end("rollback", "cannot promote: " + "; ".join(blockers), data, evidence)
            return
        reason = f"{healthy}; promoted {candidate.ref} over {ro['champion']}"
        if "champion" not in candidate.aliases:
            self.registry.promote(candidate.ref, reason=f"loop: {reason}")
        current = self.deployments.get(self.name)
        if not (
            current.spec.strategy == "single" and current.spec.routes[0].model == candidate.ref
        ):
            single = DeploymentSpec.single(candidate.ref, **common_fields(current.spec))
            self.deployments.deploy(self.name, single, reason=f"loop: {reason}")
        self._drop_challenger(candidate)
        self.record(
            "promote",
            reason,
            evidence,
            candidate=candidate.ref,
            champion=ro["champion"],
            state=("idle", self._idle_data(data)),
        )
