"""One policy in one tick: the state machine of a deployment's loop.

``idle`` -(trigger)-> ``retraining`` -> ``evaluating`` -> ``canary`` (step 1..n) ->
``idle`` through promote, rollback or reject. The state and the rollout in progress
are stored after every move, and every action checks what is already done (a canary
already deployed, an alias already moved) so a controller that crashed resumes.
"""

from __future__ import annotations

import logging

from loopml.loop._lock import LeaseLostError
from loopml.loop._phase_retrain import RetrainPhases
from loopml.loop._phase_rollout import RolloutPhases
from loopml.loop._records import Decision

__all__ = ["PolicyTick"]

_log = logging.getLogger(__name__)


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
        except LeaseLostError:
            raise
        except Exception as exc:  # recorded, and the next tick tries again
            _log.exception("loop %s: %s", self.name, exc)
            self.once("error", f"{type(exc).__name__}: {exc}", {"code": type(exc).__name__}, state)
        return self.decisions
