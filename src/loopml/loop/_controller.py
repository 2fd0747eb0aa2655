"""The loop controller: one pass (``tick``) or a daemon (``run``) over every policy.

Only the holder of the store's lease acts (see ``_lock``). The controller acts as a
service identity (``loop-controller``) carrying the role of whoever started it, which
must allow ``deployment.change`` and ``model.promote`` (approver and up); every change
it makes is audited under that name, and each decision too, with the operator's name
in its evidence.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from loopml.core import NotFoundError, Settings, ValidationError, now_ms, repeat
from loopml.governance import Identity, StoreService, append_audit, authorize
from loopml.loop import _records as records
from loopml.loop._lock import Lease, LeaseHolder, LeaseLostError
from loopml.loop._monitor_source import MonitorSamples
from loopml.loop._policy import LoopPolicy
from loopml.loop._policy_load import load_policies
from loopml.loop._records import Decision, LoopState
from loopml.loop._triggers import SampleSource
from loopml.loop._window import Traffic
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, Feedback

__all__ = ["SERVICE_NAME", "LoopController", "TickReport"]

SERVICE_NAME = "loop-controller"
# What the operator's role must allow: the controller changes deployments and champions.
ACTIONS = ("deployment.change", "model.promote")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickReport:
    """One pass: whether this controller held the lease, what it decided, and where each
    deployment's loop stands after it."""

    acted: bool
    holder: LeaseHolder | None = None
    decisions: list[Decision] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)


class LoopController(StoreService):
    """Carries out loop policies on the store that ``settings`` names.

    Args:
        policies: the policies; by default every ``[loop.<deployment>]`` in loopml.toml.
        samples: where monitoring samples come from (drift and performance triggers); by
            default a fresh monitoring report per tick, in each policy's
            ``triggers.window``, for the policies that have such a trigger.
        clock: milliseconds now; inject one to replay months in minutes. Cooldowns,
            step durations and schedules use it; the lease uses the wall clock.
        identity: the operator (default: who the settings say is acting).
        lease_ttl_s: how long the lease outlives a controller that stopped renewing it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        policies: Sequence[LoopPolicy] | None = None,
        samples: SampleSource | None = None,
        clock: Callable[[], int] | None = None,
        identity: Identity | None = None,
        service_name: str = SERVICE_NAME,
        lease_ttl_s: float = 300.0,
        owner: str | None = None,
    ) -> None:
        super().__init__(settings, identity=identity)
        self._policies = None if policies is None else _unique(policies)
        self._samples = samples
        self._own_samples: MonitorSamples | None = None
        self.clock = clock or now_ms
        self.service_name = service_name
        self._lease_ttl_s = lease_ttl_s
        self._owner = owner
        self._lease: Lease | None = None
        self._models: dict[str, Any] = {}  # versions are immutable: load each once

    # -- configuration -------------------------------------------------------------

    @property
    def policies(self) -> builtins.list[LoopPolicy]:
        if self._policies is None:
            self._policies = _unique(load_policies(self.settings))
        return self._policies

    @property
    def samples(self) -> SampleSource | None:
        if self._samples is None:
            watched = {
                p.deployment: p.triggers.window
                for p in self.policies
                if p.triggers.drift_share is not None or p.triggers.performance_drop is not None
            }
            if watched:
                self._own_samples = MonitorSamples(self.settings, watched)
                self._samples = self._own_samples
        return self._samples

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            self._lease = Lease(self.store, owner=self._owner, ttl_s=self._lease_ttl_s)
        return self._lease

    def acting(self) -> Identity:
        """The service identity the controller acts as, after checking the operator."""
        operator = self.identity
        for action in ACTIONS:
            authorize(operator, action)
        return Identity(self.service_name, operator.role, operator.via)

    def load_model(self, registry: ModelRegistry, ref: str) -> Any:
        if ref not in self._models:
            self._models[ref] = registry.load(ref)
        return self._models[ref]

    # -- one pass and the daemon ---------------------------------------------------

    def tick(self) -> TickReport:
        """One pass over every policy; gives the lease back at the end."""
        return self._tick(keep_lease=False)

    def _tick(self, *, keep_lease: bool) -> TickReport:
        from loopml.loop._phases import PolicyTick

        actor = self.acting()
        policies = self.policies
        if not self.lease.acquire():
            return TickReport(acted=False, holder=self.lease.holder())
        self.lease.start_heartbeat()
        decisions: list[Decision] = []
        try:
            with ExitStack() as stack:
                registry = stack.enter_context(ModelRegistry(self.settings, identity=actor))
                deployments = stack.enter_context(Deployments(self.settings, identity=actor))
                feedback = stack.enter_context(Feedback(self.settings))
                traffic = Traffic(self.settings, feedback)
                stack.callback(traffic.close)
                for policy in policies:
                    self.lease.check()  # a controller that lost the lease stops here
                    run = PolicyTick(self, policy, actor, registry, deployments, traffic)
                    decisions.extend(run.run())
        finally:
            if not keep_lease:
                self.lease.release()
        states = {s.deployment: s.state for s in self.states()}
        return TickReport(acted=True, decisions=decisions, states=states)

    def run(
        self,
        *,
        interval_s: float = 30.0,
        max_ticks: int | None = None,
        stop: threading.Event | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> int:
        """Tick every ``interval_s`` seconds until ``max_ticks``, ``stop`` or Ctrl-C;
        return the number of ticks. The lease is held (renewed) between ticks, so a
        standby controller waits; it is given back on the way out. A tick that fails
        (the database away a moment) is logged and the next one tries again."""
        if interval_s < 0:
            raise ValidationError(f"interval_s must be >= 0; got {interval_s}")
        self.acting()  # refuse at once, not on the first tick

        def tick() -> None:
            try:
                report = self._tick(keep_lease=True)
            except LeaseLostError as exc:  # another controller took over: not a failure
                _log.warning("%s", exc)
                return
            if on_tick is not None:
                on_tick(report)

        try:
            return repeat(
                tick,
                interval_s=interval_s,
                max_ticks=max_ticks,
                stop=stop,
                name="loop controller",
                log=_log,
            )
        finally:
            self.lease.release()

    # -- records -------------------------------------------------------------------

    def record(
        self,
        deployment: str,
        kind: str,
        reason: str,
        *,
        candidate: str | None,
        champion: str | None,
        evidence: dict[str, Any],
        state: tuple[str, dict[str, Any]] | None,
    ) -> Decision:
        """Store a decision (and the state it leads to) with its audit row, fenced by the
        lease: a controller that lost it records nothing."""

        def work(conn: Connection) -> Decision:
            self.lease.fence(conn)
            if state is not None:
                records.write_state(conn, deployment, *state)
            return records.insert_decision(
                conn,
                deployment=deployment,
                kind=kind,
                reason=reason,
                candidate=candidate,
                champion=champion,
                evidence=evidence,
                actor=self.service_name,
                ts_ms=self.clock(),
            )

        return self.store.transact(work)

    def save_state(self, deployment: str, state: str, data: dict[str, Any]) -> None:
        def work(conn: Connection) -> None:
            self.lease.fence(conn)
            records.write_state(conn, deployment, state, data)

        self.store.transact(work)

    def state(self, deployment: str) -> LoopState:
        with self.store.read() as conn:
            return records.read_state(conn, deployment)

    def states(self) -> builtins.list[LoopState]:
        with self.store.read() as conn:
            return records.list_states(conn)

    def read(self, query: Callable[[Connection], Any]) -> Any:
        with self.store.read() as conn:
            return query(conn)

    # -- reading and freezing (the CLI) ------------------------------------------------

    def history(
        self, deployment: str | None = None, *, kind: str | None = None, limit: int = 50
    ) -> builtins.list[Decision]:
        """Decisions, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a whole number >= 1; got {limit!r}")
        if kind is not None and kind not in records.KINDS:
            raise ValidationError(f"kind must be one of {', '.join(records.KINDS)}; got {kind!r}")
        if self.settings.auth:
            _ = self.identity  # with auth on, reading needs a valid token too
        with self.store.read() as conn:
            return records.list_decisions(conn, deployment=deployment, kind=kind, limit=limit)

    def freeze(self, deployment: str, *, reason: str | None = None) -> LoopState:
        """Stop the loop from acting on ``deployment`` (a rollout in progress holds)."""
        return self._set_frozen(deployment, True, reason)

    def unfreeze(self, deployment: str, *, reason: str | None = None) -> LoopState:
        return self._set_frozen(deployment, False, reason)

    def _set_frozen(self, deployment: str, frozen: bool, reason: str | None) -> LoopState:
        operator = self.identity
        authorize(operator, "deployment.change")
        known = {p.deployment for p in self.policies}
        if deployment not in known:
            with Deployments(self.settings, identity=operator) as deployments:
                try:
                    deployments.get(deployment)
                except NotFoundError:
                    raise NotFoundError(
                        f"no deployment {deployment!r} and no loop policy for it"
                    ) from None

        def work(conn: Connection) -> LoopState:
            before = records.read_state(conn, deployment)
            records.set_frozen(conn, deployment, frozen, reason)
            append_audit(
                conn,
                actor=operator.name,
                action="loop.freeze" if frozen else "loop.unfreeze",
                target=f"deployment:{deployment}",
                before={"frozen": before.frozen, "state": before.state},
                after={"frozen": frozen, "state": before.state},
                reason=reason,
            )
            return records.read_state(conn, deployment)

        return self.store.transact(work)

    def close(self) -> None:
        if self._lease is not None:
            self._lease.stop_heartbeat()
        if self._own_samples is not None:
            self._own_samples.close()
        super().close()


def _unique(policies: Sequence[LoopPolicy]) -> builtins.list[LoopPolicy]:
    seen: set[str] = set()
    for policy in policies:
        if not isinstance(policy, LoopPolicy):
            raise ValidationError(
                f"policies must be LoopPolicy objects; got {type(policy).__name__}"
            )
        if policy.deployment in seen:
            raise ValidationError(f"two loop policies for deployment {policy.deployment!r}")
        seen.add(policy.deployment)
    return list(policies)
