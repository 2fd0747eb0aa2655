"""The idle and retraining phases: triggers, guardrails, the training pipeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from loopml.core import new_id, now_ms
from loopml.loop import _records as records
from loopml.loop._phase_base import PhaseBase
from loopml.loop._records import LoopState
from loopml.loop._triggers import Fired, check_triggers, drift_summary, samples_json
from loopml.pipelines import (
    PipelineRunRecord,
    PipelineRuns,
    latest_slot,
    load_pipeline,
    run_pipeline,
)
from loopml.registry import CHALLENGER
from loopml.serving import Deployment

__all__ = ["RetrainPhases"]

_MAX_ATTEMPTS = 2  # a retrain interrupted by a crash is tried once more


class RetrainPhases(PhaseBase):
    """``idle`` (watch the triggers) and ``retraining`` (run the pipeline)."""

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
            self.guard()
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
        self.guard()
        self.registry.set_alias(candidate.ref, CHALLENGER, reason=f"loop candidate for {self.name}")
        ro.update(
            candidate=candidate.ref, pipeline_run=run.id, cutoff_ms=cutoff, eval_started_ms=self.now
        )
        self.ctl.save_state(self.name, "evaluating", data)
        if self.frozen_now():  # frozen while the pipeline trained: hold before any deploy
            return
        self.evaluating(data)
