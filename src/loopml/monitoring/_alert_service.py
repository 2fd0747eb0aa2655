"""``Alerts``: evaluate rules on samples, notify webhooks, raise events, list and ack.

A monitoring pass calls :meth:`Alerts.evaluate` (the state machine, one transaction),
then :meth:`Alerts.notify` (webhooks for firing and resolved alerts not yet delivered)
and :meth:`Alerts.raise_events` (an ``alert.<rule>`` pipelines event per alert that
fired, so event triggers run). People read alerts and acknowledge them (audited).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, text, update

from loopml.core import NotFoundError, ValidationError, now_ms
from loopml.governance import StoreService, append_audit, require
from loopml.monitoring._alerts import (
    OPEN,
    STATES,
    Alert,
    AlertChange,
    AlertTransition,
    evaluate_rules,
    read_alert,
    read_alerts,
    read_transitions,
    record_transition,
)
from loopml.monitoring._rules import AlertRule, SampleLike
from loopml.monitoring._webhook import Delivery, WebhookSender, slack_payload
from loopml.pipelines import emit_event
from loopml.store import schema

__all__ = ["ACK_ACTION", "RUN_ACTION", "AlertDelivery", "AlertEvent", "Alerts", "event_name"]

RUN_ACTION = "monitor.run"
ACK_ACTION = "alert.ack"
EVENT_SOURCE = "monitoring"
# An undelivered notification is retried by each pass for this long, then given up.
RETRY_DELIVERY_MS = 24 * 3600 * 1000
_PG_LOCK = 0x6C6F6F70616C7274  # "loopalrt": serializes evaluations on PostgreSQL
A = schema.alerts


def event_name(rule: str) -> str:
    """The pipelines event a firing alert of ``rule`` raises: ``alert.<rule>``."""
    return f"alert.{rule}"


@dataclass(frozen=True)
class AlertDelivery:
    """One webhook notification of an alert (its state then) and how it went."""

    alert: Alert
    delivery: Delivery


@dataclass(frozen=True)
class AlertEvent:
    """The event a firing alert raised (``event_id``), or why it could not (``error``)."""

    alert: Alert
    name: str
    event_id: int | None
    error: str | None = None


class Alerts(StoreService):
    """Alerts in the store that ``settings`` names.

    :meth:`evaluate` needs ``monitor.run`` (contributor); :meth:`ack` needs ``alert.ack``
    (contributor) and is audited; reading needs a valid identity when auth is on.
    """

    # -- a monitoring pass ---------------------------------------------------------

    def evaluate(
        self,
        rules: Iterable[AlertRule],
        samples: Iterable[SampleLike],
        *,
        deployments: Iterable[str] | None = None,
        now: int | None = None,
    ) -> list[AlertChange]:
        """Compare ``rules`` with ``samples``; store and return the transitions.

        ``deployments`` are those these samples report on: an open alert of one of them
        whose series is missing from ``samples`` resolves. None means the deployments
        the samples' ``deployment`` labels name.
        See :func:`loopml.monitoring._alerts.evaluate_rules` for the state machine.

        Raises:
            PermissionDeniedError: the caller may not run monitoring.
        """
        identity = require(self.settings, self.store, RUN_ACTION)
        rules, samples = list(rules), list(samples)
        scope = None if deployments is None else list(deployments)
        at = now_ms() if now is None else now
        postgres = self.store.dialect == "postgresql"

        def work(conn: Connection) -> list[AlertChange]:
            if postgres:  # one evaluation at a time; the unique active_key is the backstop
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            return evaluate_rules(
                conn, rules, samples, deployments=scope, now=at, actor=identity.name
            )

        return self.store.transact(work)

    def notify(
        self,
        rules: Iterable[AlertRule],
        *,
        default_webhook: str | None = None,
        sender: WebhookSender | None = None,
    ) -> list[AlertDelivery]:
        """POST each firing or resolved alert whose state its webhook has not received.

        The webhook is the rule's own, else ``default_webhook``. Alerts that never fired
        are not sent. Each delivery or failure is stored as a transition; an alert that
        could not be delivered is tried again by later calls for a day.
        """
        by_name = {rule.name: rule for rule in rules}
        urls: dict[str, str] = {}
        for name, rule in by_name.items():
            url = rule.webhook or default_webhook
            if url:
                urls[name] = url
        if not urls:
            return []
        identity = require(self.settings, self.store, RUN_ACTION)
        since = now_ms() - RETRY_DELIVERY_MS
        query = (
            select(A)
            .where(
                A.c.rule.in_(list(urls)),
                A.c.state.in_(["firing", "resolved"]),
                A.c.fired_ms.is_not(None),
                A.c.updated_ms >= since,
                (A.c.notified_state.is_(None)) | (A.c.notified_state != A.c.state),
            )
            .order_by(A.c.updated_ms, A.c.id)
        )
        with self.store.read() as conn:
            pending = [read_alert(conn, row.id) for row in conn.execute(query)]
        sender = sender or WebhookSender()
        deliveries = []
        for alert in pending:
            if alert is None:
                continue
            payload = slack_payload(alert, by_name[alert.rule].describe())
            delivery = sender.post(urls[alert.rule], payload)
            deliveries.append(AlertDelivery(alert, delivery))
            self._record_delivery(alert, delivery, identity.name)
        return deliveries

    def _record_delivery(self, alert: Alert, delivery: Delivery, actor: str) -> None:
        detail = f"{delivery.url} ({delivery.attempts} attempt(s)"
        detail += f", HTTP {delivery.status})" if delivery.status is not None else ")"
        if not delivery.ok:
            detail += f": {delivery.error}"
        kind = "notified" if delivery.ok else "notify_failed"
        self._note(alert, kind, detail, actor, delivered=delivery.ok)

    def _note(
        self, alert: Alert, kind: str, detail: str, actor: str, *, delivered: bool = False
    ) -> None:
        """Store a transition that is not a state change (a delivery, an event)."""

        def work(conn: Connection) -> None:
            if delivered:
                conn.execute(update(A).where(A.c.id == alert.id).values(notified_state=alert.state))
            record_transition(
                conn, alert.id, kind, value=alert.value, actor=actor, ts_ms=now_ms(), detail=detail
            )

        self.store.transact(work)

    def raise_events(self, changes: Iterable[AlertChange]) -> list[AlertEvent]:
        """Emit ``alert.<rule>`` (payload: the alert) for each change to ``firing``.

        A failure is stored as an ``event_failed`` transition and returned, not raised.
        """
        raised = []
        for change in changes:
            if change.kind != "firing":
                continue
            alert, name = change.alert, event_name(change.alert.rule)
            payload = {**alert.to_dict(), "summary": change.rule.describe()}
            try:
                event_id = emit_event(name, payload, source=EVENT_SOURCE, settings=self.settings)
            except Exception as exc:  # a failed event must not undo the alert
                error = f"{type(exc).__name__}: {exc}"
                raised.append(AlertEvent(alert, name, None, error))
                self._note(alert, "event_failed", f"{name}: {error}", self.identity.name)
                continue
            raised.append(AlertEvent(alert, name, event_id))
            self._note(alert, "event", f"{name} #{event_id}", self.identity.name)
        return raised

    # -- people --------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        """The alert with this id.

        Raises:
            NotFoundError: no such alert.
        """
        self.identity  # noqa: B018 -- with auth on, reading needs a valid token
        with self.store.read() as conn:
            alert = read_alert(conn, alert_id)
        if alert is None:
            raise NotFoundError(f"no alert {alert_id!r}; `loopml monitor alerts list` shows them")
        return alert

    def list(
        self,
        *,
        states: Sequence[str] | None = None,
        deployment: str | None = None,
        rule: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alerts, newest first; ``states`` from ``pending``, ``firing``, ``resolved``.

        Raises:
            ValidationError: an unknown state or a limit below 1.
        """
        for state in states or ():
            if state not in STATES:
                raise ValidationError(
                    f"unknown alert state {state!r}; expected one of {', '.join(STATES)}"
                )
        if limit < 1:
            raise ValidationError(f"limit must be at least 1; got {limit}")
        self.identity  # noqa: B018
        with self.store.read() as conn:
            return read_alerts(conn, states=states, deployment=deployment, rule=rule, limit=limit)

    def active(self, deployment: str | None = None) -> builtins.list[Alert]:
        """Pending and firing alerts (of one deployment, or all)."""
        return self.list(states=OPEN, deployment=deployment, limit=1_000_000)

    def transitions(self, alert_id: str) -> builtins.list[AlertTransition]:
        """Everything that happened to an alert, oldest first.

        Raises:
            NotFoundError: no such alert.
        """
        self.get(alert_id)
        with self.store.read() as conn:
            return read_transitions(conn, alert_id)

    def ack(self, alert_id: str, *, comment: str | None = None) -> Alert:
        """Acknowledge an alert: someone is on it. Audited (``alert.ack``).

        Acknowledging does not silence or resolve it; the same alert is not acknowledged
        twice.

        Raises:
            NotFoundError: no such alert.
            ValidationError: already acknowledged.
            PermissionDeniedError: the caller may not acknowledge alerts.
        """
        identity = require(self.settings, self.store, ACK_ACTION)

        def work(conn: Connection) -> Alert:
            alert = read_alert(conn, alert_id)
            if alert is None:
                raise NotFoundError(
                    f"no alert {alert_id!r}; `loopml monitor alerts list` shows them"
                )
            if alert.acked_by is not None:
                raise ValidationError(
                    f"alert {alert_id} was acknowledged by {alert.acked_by} already"
                )
            at = now_ms()
            conn.execute(
                update(A).where(A.c.id == alert_id).values(acked_by=identity.name, acked_ms=at)
            )
            record_transition(
                conn,
                alert_id,
                "acknowledged",
                value=alert.value,
                actor=identity.name,
                ts_ms=at,
                detail=comment,
            )
            append_audit(
                conn,
                actor=identity.name,
                action=ACK_ACTION,
                target=f"alert:{alert_id}",
                before={"acked_by": None},
                after={"acked_by": identity.name, "rule": alert.rule, "state": alert.state},
                reason=comment,
            )
            found = read_alert(conn, alert_id)
            assert found is not None
            return found

        return self.store.transact(work)
