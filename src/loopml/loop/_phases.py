"""One policy in one tick: the state machine of a deployment's loop.

``idle`` -(trigger)-> ``retraining`` -> ``evaluating`` -> ``canary`` (step 1..n) ->
``idle`` through promote, rollback or reject. The state and the rollout in progress
are stored after every move, and every action checks what is already done (a canary
already deployed, an alias already moved) so a controller that crashed resumes.
"""

from __future__ import annotations

import logging

from loopml.core import LoopmlError
from loopml.loop._lock import LeaseLostError
from loopml.loop._phase_retrain import RetrainPhases
from loopml.loop._phase_rollout import RolloutPhases
from loopml.loop._records import Decision

__all__ = ["PolicyTick"]

_log = logging.getLogger(__name__)


# Ticks in a row a rollout may fail with an unexpected error before it ends; it ends
# sooner when the errors outlast the phase's own limit (max_wait_s, step_timeout_s).
MAX_ERRORS = 5


class PolicyTick(RetrainPhases, RolloutPhases):
    """Moves one deployment's loop as far as it can go now."""

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
            if state.state != "idle" and not frozen:
                self._clear_errors()
        except LeaseLostError:
            raise
        except Exception as exc:  # recorded, and the next tick tries again
            if isinstance(exc, LoopmlError):  # expected (bad data, a blip): one line
                _log.warning("loop %s: %s: %s", self.name, type(exc).__name__, exc)
            else:
                _log.exception("loop %s: %s", self.name, exc)
            try:
                self._failed(exc)
            except LeaseLostError:
                raise
            except Exception:  # ending the rollout failed too: the next tick tries again
                _log.exception("loop %s: handling the error failed", self.name)
        return self.decisions

    def _failed(self, exc: Exception) -> None:
        """Record the error; a rollout whose evaluation or canary keeps failing ends
        (reject, rollback) rather than hold the deployment forever."""
        state = self.ctl.state(self.name)  # the tick may have moved it before failing
        text = f"{type(exc).__name__}: {exc}"
        evidence = {"code": type(exc).__name__}
        ro = state.data.get("rollout")
        if state.state not in ("evaluating", "canary") or not ro or ro.get("promoting"):
            self.once("error", text, evidence, state)
            return
        ro["errors"] = int(ro.get("errors", 0)) + 1
        if state.state == "evaluating":
            kind, since, limit = "reject", ro["eval_started_ms"], self.policy.evaluation.max_wait_s
        else:
            kind, since, limit = (
                "rollback",
                ro["step_started_ms"],
                self.policy.rollout.step_timeout_s,
            )
        if ro["errors"] >= MAX_ERRORS or self.now - since > limit * 1000:
            reason = (
                f"{state.state} failed {ro['errors']} tick(s) in a row, for "
                f"{(self.now - since) / 1000:.0f} s (limit {MAX_ERRORS} ticks or {limit:g} s); "
                f"last: {text}"
            )
            self.end(kind, reason, state.data, {**evidence, "errors": ro["errors"]})
            return
        self.once("error", text, evidence, state, state.data)

    def _clear_errors(self) -> None:
        """A pass that went through resets the count of errors in a row."""
        state = self.ctl.state(self.name)
        ro = state.data.get("rollout")
        if ro and ro.pop("errors", None):
            self.ctl.save_state(self.name, state.state, state.data)
