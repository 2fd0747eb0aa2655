"""The evaluating and canary phases, and promotion."""

from __future__ import annotations

from typing import Any

from loopml.core import ValidationError
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
        changed = self._changed_under_loop(candidate.ref, champion.ref)
        if changed is not None:
            self.end("error", changed, data, {**evidence, "code": "deployment_changed"})
            return
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
        try:
            result = compare(evaluation, labelled, candidate, champion, load)
        except ValidationError as exc:  # waiting longer will not make the metric computable
            self.end("reject", f"the candidate cannot be evaluated: {exc}", data, evidence)
            return
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
                champion.ref,
                candidate.ref,
                first.weight,
                sticky_key=self.policy.rollout.sticky_key,
                **common_fields(spec),
            )
            self.guard()
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
        if ro.get("promoting"):  # a promotion began and did not finish: finish it
            self._finish_promotion(data, ro.get("promote_evidence", {}), ro["promoting"])
            return
        rollout = self.policy.rollout
        k = min(int(ro["step"]), len(rollout.steps) - 1)
        step = rollout.steps[k]
        candidate, champion = self.registry.get(ro["candidate"]), self.registry.get(ro["champion"])
        recent = self.traffic.records(self.name, ro["step_after_ms"])
        ops = {v.ref: ops_stats(recent, v.ref) for v in (candidate, champion)}
        since_canary = self.traffic.records(self.name, ro["canary_after_ms"])
        labelled = self.traffic.labelled(self.name, since_canary, ro["labels_since_ms"])
        evidence: dict[str, Any] = {"step": k + 1, "weight": step.weight}
        try:
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
        except ValidationError as exc:  # the metric cannot be computed: no use waiting
            self.end("rollback", f"the canary cannot be judged: {exc}", data, evidence)
            return
        evidence.update(samples=health.samples, quality=health.quality)
        if health.failures:
            self.end("rollback", "; ".join(health.failures), data, evidence)
            return
        rows = int(ops[candidate.ref].get("rows", 0))
        elapsed_s = (self.now - ro["step_started_ms"]) / 1000
        done = (step.predictions is not None and rows >= step.predictions) or (
            step.seconds is not None and elapsed_s >= step.seconds
        )
        if not done or rows < rollout.min_rows:
            if elapsed_s > rollout.step_timeout_s:
                needs = rollout.min_rows if rows < rollout.min_rows else step.predictions
                self.end(
                    "rollback",
                    f"canary step {k + 1} did not finish within {rollout.step_timeout_s:g} s: "
                    f"the canary served only {rows} predictions in {elapsed_s:.0f} s "
                    f"(needs {needs})",
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
            self.guard()
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
        # stored before any side effect: a tick that stops half way (a database blip, a
        # lost lease, a crash) leaves a marker the next tick finishes, never re-judges
        ro.update(promoting=reason, promote_evidence=evidence)
        self.ctl.save_state(self.name, "canary", data)
        self._finish_promotion(data, evidence, reason)

    def _finish_promotion(
        self, data: dict[str, Any], evidence: dict[str, Any], reason: str
    ) -> None:
        """Champion alias, the candidate alone, the challenger alias gone, the decision:
        each step checks whether it is done already, so a resumed promotion finishes."""
        ro = data["rollout"]
        candidate = self.registry.get(ro["candidate"])
        if "champion" not in candidate.aliases:
            self.guard()
            self.registry.promote(candidate.ref, reason=f"loop: {reason}")
        current = self.deployments.get(self.name)
        if not (
            current.spec.strategy == "single" and current.spec.routes[0].model == candidate.ref
        ):
            self.guard()
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

    def _changed_under_loop(self, candidate: str, champion: str) -> str | None:
        """Why the deployment no longer serves what this rollout started from, or None:
        the candidate was trained to replace the champion, and deploying a canary over an
        operator's change would undo it."""
        spec = self.deployments.get(self.name).spec
        if spec.strategy == "single" and spec.routes[0].model == champion:
            return None
        if spec.strategy == "canary" and spec.primary == champion and spec.canary == candidate:
            return None  # our own canary, deployed before a tick stopped
        arms = (spec.primary, spec.canary, spec.shadow, spec.blue, spec.green)
        models = [r.model for r in spec.routes] or [m for m in arms if m]
        return (
            f"deployment changed under the loop: {self.name} serves {spec.strategy} "
            f"{', '.join(models)}, "
            f"not {champion} alone as when the retrain of {candidate} began; the rollout ends"
        )
