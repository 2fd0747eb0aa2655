"""One policy in one tick: the state machine of a deployment's loop.

``idle`` -(trigger)-> ``retraining`` -> ``evaluating`` -> ``canary`` (step 1..n) ->
``idle`` through promote, rollback or reject. The state and the rollout in progress
are stored after every move, and every action checks what is already done (a canary
already deployed, an alias already moved) so a controller that crashed resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core import new_id, now_ms
from loopml.governance import Identity
from loopml.loop import _records as records
from loopml.loop._evaluate import compare
from loopml.loop._lock import LeaseLostError
from loopml.loop._policy import LoopPolicy
from loopml.loop._records import Decision, LoopState
from loopml.loop._rollout import judge_canary
from loopml.loop._triggers import Fired, check_triggers, drift_summary, samples_json
from loopml.loop._window import Traffic, ops_stats
from loopml.pipelines import (
    PipelineRunRecord,
    PipelineRuns,
    latest_slot,
    load_pipeline,
    run_pipeline,
)
from loopml.registry import CHALLENGER, GateReport, ModelRegistry, ModelVersion
from loopml.serving import Deployment, Deployments, DeploymentSpec

if TYPE_CHECKING:
    from loopml.loop._controller import LoopController

__all__ = ["PolicyTick"]

_log = logging.getLogger(__name__)
_MAX_ATTEMPTS = 2  # a retrain interrupted by a crash is tried once more


def _common(spec: DeploymentSpec) -> dict[str, Any]:
    """What a new spec keeps from the current one: fallback, time limit, ONNX."""
    return {"fallback": spec.fallback, "timeout_ms": spec.timeout_ms, "onnx": spec.onnx}


def _gates(report: GateReport) -> dict[str, Any]:
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


class PolicyTick:
    """Moves one deployment's loop as far as it can go now."""

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

    def run(self) -> list[Decision]:
        state = self.ctl.state(self.name)
        frozen = state.frozen or self.policy.guardrails.frozen
        try:
            if state.state == "idle":
                self.idle(state, frozen)
            elif frozen:
                pass  # a rollout in progress holds where it is
            elif state.state == "retraining":
                self.retraining(state.data)
            elif state.state == "evaluating":
                self.evaluating(state.data)
            elif state.state == "canary":
                self.canary(state.data)
        except LeaseLostError:
            raise
        except Exception as exc:  # recorded, and the next tick tries again
            _log.exception("loop %s: %s", self.name, exc)
            self.once("error", f"{type(exc).__name__}: {exc}", {"code": type(exc).__name__}, state)
        return self.decisions

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

    # -- idle: triggers and guardrails -----------------------------------------------

    def idle(self, state: LoopState, frozen: bool) -> None:
        triggers = self.policy.triggers
        current = self.deployments.get(self.name)
        served = current.spec.routes[0].model if current.spec.strategy == "single" else None
        samples = list(self.ctl.samples.samples(self.name)) if self.ctl.samples else []
        served_metrics = self.registry.get(served).metrics if served else {}
        data = {k: v for k, v in state.data.items() if k != "rollout"}
        before = dict(data)
        new_labels = None
        if triggers.new_labels is not None:
            since = data.setdefault("labels_since_ms", now_ms())
            new_labels = self.traffic.label_count(self.name, since)
        slot = None
        if triggers.schedule is not None:
            at = dt.datetime.fromtimestamp(self.now / 1000, dt.UTC)
            latest = latest_slot(triggers.schedule, at)
            latest_ms = int(latest.timestamp() * 1000)
            seen = data.setdefault("schedule_slot_ms", latest_ms)  # no back-fill
            if latest_ms > seen:
                slot, data["schedule_slot_ms"] = latest, latest_ms
        fired = check_triggers(
            self.policy,
            samples,
            served=served,
            served_metrics=served_metrics,
            new_labels=new_labels,
            schedule_slot=slot,
        )
        if not fired:
            if data != before:
                self.ctl.save_state(self.name, "idle", data)
            return
        evidence = {
            "triggers": [f.to_dict() for f in fired],
            "samples": samples_json(samples),
            "drift": drift_summary(samples),
            "served": served,
            "new_labels": new_labels,
        }
        blocked = self.guardrail(state, frozen, current)
        if blocked is not None:
            code, why = blocked
            fired_text = "; ".join(f.reason for f in fired)
            self.once(
                "skip", f"{why} (fired: {fired_text})", {**evidence, "code": code}, state, data
            )
            return
        assert served is not None  # guardrail() stops a deployment that is not single
        self.retrain(fired, evidence, data, served)

    def guardrail(
        self, state: LoopState, frozen: bool, current: Deployment
    ) -> tuple[str, str] | None:
        """Why a retrain may not start now (code, reason), or None."""
        rails = self.policy.guardrails
        if frozen:
            why = state.freeze_reason or (
                "guardrails.frozen" if rails.frozen else "no reason given"
            )
            return "frozen", f"the loop is frozen for {self.name}: {why}"
        if current.spec.strategy != "single":
            return "not_single", (
                f"{self.name} serves a {current.spec.strategy} deployment; the loop starts "
                "only from a single one"
            )
        last = self.ctl.read(lambda conn: records.last_decision(conn, self.name, "retrain"))
        if last is not None and self.now - last.ts_ms < rails.cooldown_s * 1000:
            ago = (self.now - last.ts_ms) / 1000
            return (
                "cooldown",
                f"cooldown: last retrain {ago:.0f} s ago, cooldown {rails.cooldown_s:g} s",
            )
        day_ago = self.now - 86_400_000
        count = self.ctl.read(lambda conn: records.count_since(conn, self.name, "retrain", day_ago))
        if count >= rails.max_retrains_per_day:
            return "max_per_day", (
                f"{count} retrains in the last 24 h "
                f"(max_retrains_per_day {rails.max_retrains_per_day})"
            )
        return None

    # -- retraining ------------------------------------------------------------------

    def retrain(
        self, fired: list[Fired], evidence: dict[str, Any], data: dict[str, Any], served: str
    ) -> None:
        params = dict(self.policy.pipeline_params)
        watermark = self.traffic.watermark(self.name)
        if self.policy.cutoff_param is not None:
            params[self.policy.cutoff_param] = watermark or 0
        data["labels_since_ms"] = now_ms()  # new labels count from this retrain on
        rollout = {
            "id": new_id()[:16],
            "champion": served,
            "params": params,
            "attempts": 0,
            "start_watermark": watermark,
            "started_ms": self.now,
            "labels_since_ms": data["labels_since_ms"],
        }
        reason = "; ".join(f.reason for f in fired) + f": retraining with {self.policy.pipeline}"
        data = {**data, "rollout": rollout}
        self.record(
            "retrain",
            reason,
            {**evidence, "pipeline": self.policy.pipeline, "params": params},
            champion=served,
            state=("retraining", data),
        )
        self.retraining(data)

    def _pipeline_ref(self) -> str:
        target, sep, attr = self.policy.pipeline.rpartition(":")
        if sep and (target.endswith(".py") or "/" in target) and not Path(target).is_absolute():
            return f"{(self.ctl.settings.project_dir / target).resolve()}:{attr}"
        return self.policy.pipeline

    def _finished_run(self, started_by: str) -> PipelineRunRecord | None:
        with PipelineRuns(self.ctl.settings) as runs:
            found = [r for r in runs.runs(limit=200) if r.started_by == started_by]
        return next((r for r in found if r.status == "succeeded"), None)

    def retraining(self, data: dict[str, Any]) -> None:
        ro = data["rollout"]
        started_by = f"loop:{self.name}:{ro['id']}"
        run = self._finished_run(started_by) if ro["attempts"] else None
        if run is None:
            if ro["attempts"] >= _MAX_ATTEMPTS:
                self.end("error", f"training did not finish in {_MAX_ATTEMPTS} attempts", data, {})
                return
            ro["attempts"] += 1
            self.ctl.save_state(self.name, "retraining", data)
            pipeline = self._pipeline_ref()
            run = run_pipeline(
                load_pipeline(pipeline),
                ro["params"],
                settings=self.ctl.settings,
                started_by=started_by,
                ref=pipeline,
            )
        if run.status != "succeeded":
            self.end(
                "error",
                f"pipeline run {run.id} {run.status}: {run.error}",
                data,
                {"pipeline_run": run.id},
            )
            return
        mine = [v for v in self.registry.versions(self.policy.model) if v.pipeline_run_id == run.id]
        if not mine:
            self.end(
                "error",
                f"pipeline run {run.id} registered no version of {self.policy.model}",
                data,
                {"pipeline_run": run.id},
            )
            return
        candidate = mine[-1]
        cutoff = ro["params"][self.policy.cutoff_param] if self.policy.cutoff_param else None
        if cutoff is None:
            cutoff = self.traffic.watermark(self.name) or 0
        self.registry.set_alias(candidate.ref, CHALLENGER, reason=f"loop candidate for {self.name}")
        ro.update(
            candidate=candidate.ref, pipeline_run=run.id, cutoff_ms=cutoff, eval_started_ms=self.now
        )
        self.ctl.save_state(self.name, "evaluating", data)
        self.evaluating(data)

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
        evidence["gates"] = _gates(self.registry.evaluate_gates(candidate.ref))
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
                champion.ref, candidate.ref, first.weight, **_common(spec)
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

    def _loader(self) -> Any:
        return lambda ref: self.ctl.load_model(self.registry, ref)

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

    # -- the end of a rollout ----------------------------------------------------------

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
            single = DeploymentSpec.single(candidate.ref, **_common(current.spec))
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

    def end(self, kind: str, reason: str, data: dict[str, Any], evidence: dict[str, Any]) -> None:
        """Close the rollout as ``reject``, ``rollback`` or ``error``: a canary of the
        candidate gives way to the champion alone, and a candidate that lost is rejected in
        the registry."""
        ro = data["rollout"]
        champion, candidate_ref = ro["champion"], ro.get("candidate")
        current = self.deployments.get(self.name)
        if current.spec.strategy == "canary" and current.spec.canary == candidate_ref:
            single = DeploymentSpec.single(champion, **_common(current.spec))
            self.deployments.deploy(self.name, single, reason=f"loop {kind}: {reason}")
        if candidate_ref is not None and kind in ("reject", "rollback"):
            candidate = self.registry.get(candidate_ref)
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
            self.registry.remove_alias(
                candidate.model, CHALLENGER, reason=f"loop on {self.name}: done"
            )

    @staticmethod
    def _idle_data(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "rollout"}
