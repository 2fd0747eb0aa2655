"""Alerts as rows: the state machine (pending, firing, resolved) and its storage.

:func:`evaluate_rules` runs inside one write transaction: it reads the open alerts,
compares each rule with the samples of this pass, and stores every transition with the
sample value. An open alert's ``active_key`` is unique, so the same rule and labels
never have two open alerts (dedup), even when passes race.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loopml.core import new_id
from loopml.monitoring._rules import AlertRule, SampleLike
from loopml.store import schema

__all__ = [
    "STATES",
    "Alert",
    "AlertChange",
    "AlertTransition",
    "evaluate_rules",
    "fingerprint",
    "read_alert",
    "read_alerts",
    "read_transitions",
    "record_transition",
]

A, T = schema.alerts, schema.alert_transitions
STATES = ("pending", "firing", "resolved")
OPEN = ("pending", "firing")


@dataclass(frozen=True)
class Alert:
    """One alert: a rule's condition on one labelled series, from pending to resolved.

    ``value`` is the latest sample value seen (None when the series disappeared).
    ``fired_ms`` is None for an alert that never fired (resolved while pending).
    """

    id: str
    rule: str
    metric: str
    labels: dict[str, str]
    deployment: str | None
    severity: str
    comparison: str
    threshold: float
    value: float | None
    state: str
    started_ms: int
    fired_ms: int | None
    resolved_ms: int | None
    updated_ms: int
    acked_by: str | None
    acked_ms: int | None
    notified_state: str | None
    fingerprint: str

    @property
    def condition(self) -> str:
        """``metric{labels} >= threshold`` with the series' own labels."""
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        selector = "{" + inner + "}" if inner else ""
        return f"{self.metric}{selector} {self.comparison} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (for ``--json`` and webhook payloads)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "metric": self.metric,
            "labels": dict(self.labels),
            "deployment": self.deployment,
            "severity": self.severity,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "value": self.value,
            "state": self.state,
            "started_ms": self.started_ms,
            "fired_ms": self.fired_ms,
            "resolved_ms": self.resolved_ms,
            "updated_ms": self.updated_ms,
            "acked_by": self.acked_by,
            "acked_ms": self.acked_ms,
        }


@dataclass(frozen=True)
class AlertTransition:
    """A stored change of an alert: ``kind`` is ``pending``, ``firing``, ``resolved``,
    ``acknowledged``, ``notified``, ``notify_failed``, ``event`` or ``event_failed``."""

    id: int
    alert_id: str
    kind: str
    value: float | None
    detail: str | None
    actor: str
    ts_ms: int


@dataclass(frozen=True)
class AlertChange:
    """What a pass did to an alert: it became ``pending``, ``firing`` or ``resolved``."""

    kind: str
    alert: Alert
    rule: AlertRule


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """The identity of a rule's series: SHA-256 of the rule name and the sorted labels."""
    text = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        rule=row.rule,
        metric=row.metric,
        labels=json.loads(row.labels),
        deployment=row.deployment,
        severity=row.severity,
        comparison=row.comparison,
        threshold=row.threshold,
        value=row.value,
        state=row.state,
        started_ms=row.started_ms,
        fired_ms=row.fired_ms,
        resolved_ms=row.resolved_ms,
        updated_ms=row.updated_ms,
        acked_by=row.acked_by,
        acked_ms=row.acked_ms,
        notified_state=row.notified_state,
        fingerprint=row.fingerprint,
    )


def read_alert(conn: Connection, alert_id: str) -> Alert | None:
    """The alert with this id, or None."""
    row = conn.execute(select(A).where(A.c.id == alert_id)).first()
    return None if row is None else _alert(row)


def read_alerts(
    conn: Connection,
    *,
    states: Sequence[str] | None = None,
    deployment: str | None = None,
    rule: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts, newest first, filtered by state, deployment and rule."""
    query = select(A)
    if states is not None:
        query = query.where(A.c.state.in_(list(states)))
    if deployment is not None:
        query = query.where(A.c.deployment == deployment)
    if rule is not None:
        query = query.where(A.c.rule == rule)
    query = query.order_by(A.c.started_ms.desc(), A.c.id.desc()).limit(limit)
    return [_alert(row) for row in conn.execute(query)]


def read_transitions(conn: Connection, alert_id: str) -> list[AlertTransition]:
    """An alert's transitions, oldest first."""
    query = select(T).where(T.c.alert_id == alert_id).order_by(T.c.id)
    return [
        AlertTransition(r.id, r.alert_id, r.kind, r.value, r.detail, r.actor, r.ts_ms)
        for r in conn.execute(query)
    ]


def record_transition(
    conn: Connection,
    alert_id: str,
    kind: str,
    *,
    value: float | None,
    actor: str,
    ts_ms: int,
    detail: str | None = None,
) -> None:
    """Append one transition row."""
    conn.execute(
        insert(T).values(
            alert_id=alert_id, kind=kind, value=value, detail=detail, actor=actor, ts_ms=ts_ms
        )
    )


def _clean(value: float) -> float | None:
    """NaN and infinities are stored as NULL (not every database keeps them)."""
    return value if value == value and abs(value) != float("inf") else None


def _open(
    conn: Connection, rule: AlertRule, sample: SampleLike, fp: str, now: int, actor: str
) -> AlertChange:
    state = "firing" if rule.for_s == 0 else "pending"
    labels = dict(sample.labels)
    alert_id, value = new_id(), _clean(sample.value)
    values: dict[str, Any] = {
        "id": alert_id,
        "rule": rule.name,
        "fingerprint": fp,
        "active_key": fp,
        "metric": rule.metric,
        "labels": json.dumps(labels, sort_keys=True),
        "deployment": labels.get("deployment"),
        "severity": rule.severity,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "value": value,
        "state": state,
        "started_ms": now,
        "fired_ms": now if state == "firing" else None,
        "resolved_ms": None,
        "updated_ms": now,
        "acked_by": None,
        "acked_ms": None,
        "notified_state": None,
    }
    conn.execute(insert(A).values(**values))
    record_transition(conn, alert_id, state, value=value, actor=actor, ts_ms=now)
    row = conn.execute(select(A).where(A.c.id == alert_id)).one()
    return AlertChange(state, _alert(row), rule)


def _move(
    conn: Connection,
    alert: Alert,
    rule: AlertRule,
    state: str,
    value: float | None,
    now: int,
    actor: str,
    detail: str | None = None,
) -> AlertChange:
    changes: dict[str, Any] = {"state": state, "value": value, "updated_ms": now}
    if state == "firing":
        changes["fired_ms"] = now
    if state == "resolved":
        changes.update(resolved_ms=now, active_key=None)
    conn.execute(update(A).where(A.c.id == alert.id).values(**changes))
    record_transition(conn, alert.id, state, value=value, actor=actor, ts_ms=now, detail=detail)
    row = conn.execute(select(A).where(A.c.id == alert.id)).one()
    return AlertChange(state, _alert(row), rule)


def evaluate_rules(
    conn: Connection,
    rules: Iterable[AlertRule],
    samples: Iterable[SampleLike],
    *,
    deployments: Iterable[str] | None,
    now: int,
    actor: str,
) -> list[AlertChange]:
    """Compare ``rules`` with ``samples`` and store the transitions; return them.

    - a breached series with no open alert opens one: ``firing`` at once when the rule's
      ``for`` is 0, else ``pending``;
    - a pending alert still breached fires once it has been pending for ``for``;
    - an open alert whose series is no longer breached resolves (with the value);
    - an open alert whose series is missing from these samples resolves too, but only
      for the ``deployments`` this pass reported on (when None: those the samples'
      ``deployment`` labels name): a deployment left out keeps its alerts as they are.

    Alerts of rules not in ``rules`` are left alone.
    """
    rules = list(rules)
    samples = list(samples)
    scope: set[str | None] = (
        {sample.labels.get("deployment") for sample in samples}
        if deployments is None
        else set(deployments)
    )
    by_name = {rule.name: rule for rule in rules}
    open_alerts = {
        alert.fingerprint: alert
        for alert in read_alerts(conn, states=OPEN, limit=1_000_000)
        if alert.rule in by_name
    }
    changes: list[AlertChange] = []
    seen: set[str] = set()
    for rule in rules:
        for sample in samples:
            if not rule.matches(sample):
                continue
            fp = fingerprint(rule.name, sample.labels)
            if fp in seen:  # one sample per series and pass; a duplicate is ignored
                continue
            seen.add(fp)
            current = open_alerts.get(fp)
            value = _clean(sample.value)
            if current is None:
                if rule.breached(sample.value):
                    changes.append(_open(conn, rule, sample, fp, now, actor))
            elif not rule.breached(sample.value):
                changes.append(_move(conn, current, rule, "resolved", value, now, actor))
            elif current.state == "pending" and now - current.started_ms >= rule.for_s * 1000:
                changes.append(_move(conn, current, rule, "firing", value, now, actor))
            else:
                conn.execute(
                    update(A).where(A.c.id == current.id).values(value=value, updated_ms=now)
                )
    for fp, alert in open_alerts.items():
        if fp in seen or alert.deployment not in scope:
            continue
        detail = "the series is no longer reported"
        changes.append(
            _move(conn, alert, by_name[alert.rule], "resolved", None, now, actor, detail)
        )
    return changes
