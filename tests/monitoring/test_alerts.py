"""Alert states on both databases: pending, firing after ``for``, dedup, resolve, ack."""

from __future__ import annotations

import pytest

from loopml.core import (
    NotFoundError,
    PermissionDeniedError,
    Settings,
    ValidationError,
    load_settings,
)
from loopml.governance import Governance, Identity, Role, list_audit, resolve_identity
from loopml.monitoring import AlertRule, Alerts
from loopml.store import open_store
from tests.monitoring.alert_helpers import drift, sample

DRIFT = AlertRule(
    name="drift_high", metric="loopml_drift_share", comparison=">=", threshold=0.5, for_s=60
)
NOW = 1_900_000_000_000


def test_a_breach_is_pending_then_fires_after_for(settings: Settings) -> None:
    with Alerts(settings) as alerts:
        first = alerts.evaluate([DRIFT], [drift(0.6)], now=NOW)
        assert [(c.kind, c.alert.state, c.alert.value) for c in first] == [
            ("pending", "pending", 0.6)
        ]
        # still breached but not for long enough: no change, the value is kept fresh
        assert alerts.evaluate([DRIFT], [drift(0.7)], now=NOW + 59_000) == []
        assert alerts.get(first[0].alert.id).value == 0.7
        fired = alerts.evaluate([DRIFT], [drift(0.8)], now=NOW + 60_000)
        assert [(c.kind, c.alert.id, c.alert.fired_ms) for c in fired] == [
            ("firing", first[0].alert.id, NOW + 60_000)
        ]


def test_a_firing_alert_never_fires_twice_and_resolves_when_clear(settings: Settings) -> None:
    rule = AlertRule(name="drift_now", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(settings) as alerts:
        fired = alerts.evaluate([rule], [drift(0.9)], now=NOW)
        assert [c.kind for c in fired] == ["firing"]  # for = 0: no pending step
        for step in range(1, 4):
            assert alerts.evaluate([rule], [drift(0.9)], now=NOW + step) == []
        assert len(alerts.list()) == 1
        resolved = alerts.evaluate([rule], [drift(0.2)], now=NOW + 10)
        assert [(c.kind, c.alert.state, c.alert.value) for c in resolved] == [
            ("resolved", "resolved", 0.2)
        ]
        again = alerts.evaluate([rule], [drift(0.95)], now=NOW + 20)
        assert [c.kind for c in again] == ["firing"]
        assert again[0].alert.id != fired[0].alert.id  # a new alert, the old one stays resolved
        history = [(t.kind, t.value) for t in alerts.transitions(fired[0].alert.id)]
        assert history == [("firing", 0.9), ("resolved", 0.2)]
        assert [a.state for a in alerts.list()] == ["firing", "resolved"]


def test_each_labelled_series_is_its_own_alert(settings: Settings) -> None:
    rule = AlertRule(
        name="feature_drift",
        metric="loopml_feature_drifted",
        comparison=">=",
        threshold=1,
        severity="info",
    )
    samples = [
        sample("loopml_feature_drifted", 1, feature="age"),
        sample("loopml_feature_drifted", 0, feature="income"),
        sample("loopml_feature_drifted", 1, feature="city"),
        sample("loopml_drift_share", 1),  # another metric: not this rule's
    ]
    with Alerts(settings) as alerts:
        changes = alerts.evaluate([rule], samples, now=NOW)
        assert sorted(c.alert.labels["feature"] for c in changes) == ["age", "city"]
        assert {c.alert.severity for c in changes} == {"info"}


def test_label_matchers_pick_the_series(settings: Settings) -> None:
    rule = AlertRule(
        name="auc_low",
        metric="loopml_model_performance",
        labels={"metric": "roc_auc"},
        comparison="<",
        threshold=0.7,
    )
    samples = [
        sample("loopml_model_performance", 0.6, metric="roc_auc", model_version="churn@2"),
        sample("loopml_model_performance", 0.5, metric="accuracy", model_version="churn@2"),
    ]
    with Alerts(settings) as alerts:
        changes = alerts.evaluate([rule], samples, now=NOW)
        assert [c.alert.labels for c in changes] == [
            {"deployment": "churn", "metric": "roc_auc", "model_version": "churn@2"}
        ]
        assert changes[0].alert.condition == (
            'loopml_model_performance{deployment="churn",metric="roc_auc",'
            'model_version="churn@2"} < 0.7'
        )


def test_a_vanished_series_resolves_only_for_deployments_in_the_pass(settings: Settings) -> None:
    rule = AlertRule(name="drift_now", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(settings) as alerts:
        alerts.evaluate([rule], [drift(0.9, "a"), drift(0.9, "b")], now=NOW)
        # a pass over deployment "a" only, which no longer reports drift: "b" is untouched
        changes = alerts.evaluate([rule], [], deployments=["a"], now=NOW + 1)
        assert [(c.kind, c.alert.deployment, c.alert.value) for c in changes] == [
            ("resolved", "a", None)
        ]
        assert [a.deployment for a in alerts.active()] == ["b"]
        assert alerts.active("a") == []
        detail = alerts.transitions(changes[0].alert.id)[-1].detail
        assert detail is not None and "no longer reported" in detail


def test_a_pending_alert_that_clears_never_fired(settings: Settings) -> None:
    with Alerts(settings) as alerts:
        alerts.evaluate([DRIFT], [drift(0.6)], now=NOW)
        changes = alerts.evaluate([DRIFT], [drift(0.1)], now=NOW + 1000)
        assert [(c.kind, c.alert.fired_ms) for c in changes] == [("resolved", None)]


def test_nan_never_breaches(settings: Settings) -> None:
    rule = AlertRule(name="auc_low", metric="loopml_drift_share", comparison="<", threshold=0.7)
    with Alerts(settings) as alerts:
        assert alerts.evaluate([rule], [drift(float("nan"))], now=NOW) == []


def test_alerts_of_rules_outside_the_pass_are_left_alone(settings: Settings) -> None:
    other = AlertRule(name="other", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(settings) as alerts:
        alerts.evaluate([other], [drift(0.9)], now=NOW)
        assert alerts.evaluate([DRIFT], [], now=NOW + 1) == []
        assert [a.rule for a in alerts.active()] == ["other"]


def test_listing_filters_and_rejects_unknown_states(settings: Settings) -> None:
    rule = AlertRule(name="drift_now", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(settings) as alerts:
        alerts.evaluate([rule, DRIFT], [drift(0.9, "a"), drift(0.9, "b")], now=NOW)
        assert len(alerts.list(states=["firing"])) == 2
        assert len(alerts.list(states=["pending"], deployment="a")) == 1
        assert len(alerts.list(rule="drift_high")) == 2
        with pytest.raises(ValidationError, match="unknown alert state 'open'"):
            alerts.list(states=["open"])
        with pytest.raises(NotFoundError, match="no alert 'nope'"):
            alerts.get("nope")


def test_ack_is_stored_and_audited_once(settings: Settings) -> None:
    rule = AlertRule(name="drift_now", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(settings) as alerts:
        alert = alerts.evaluate([rule], [drift(0.9)], now=NOW)[0].alert
        acked = alerts.ack(alert.id, comment="looking at the new feed")
        assert acked.acked_by is not None and acked.acked_ms is not None
        assert acked.state == "firing"  # acknowledging neither silences nor resolves
        with pytest.raises(ValidationError, match="acknowledged by"):
            alerts.ack(alert.id)
        assert alerts.transitions(alert.id)[-1].kind == "acknowledged"
        with alerts.store.read() as conn:
            audit = [e for e in list_audit(conn, limit=100) if e.action == "alert.ack"]
        assert [(e.target, e.reason) for e in audit] == [
            (f"alert:{alert.id}", "looking at the new feed")
        ]


def test_a_viewer_can_read_but_not_ack_or_run(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    base = load_settings(project_dir=root, environ={}, system_metrics=False, auth=True)
    store = open_store(base.db_url)
    governance = Governance(base, store=store)
    admin_token = governance.bootstrap("admin", actor=resolve_identity(base, store)).secret
    admin = Identity("admin", Role.ADMIN, "token")
    governance.add_user("val", Role.VIEWER, actor=admin)
    viewer_token = governance.create_token("val", actor=admin).secret
    store.close()

    def as_(token: str) -> Settings:
        return load_settings(
            project_dir=root, environ={}, system_metrics=False, auth=True, token=token
        )

    rule = AlertRule(name="drift_now", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(as_(admin_token)) as alerts:
        alert = alerts.evaluate([rule], [drift(0.9)], now=NOW)[0].alert
    with Alerts(as_(viewer_token)) as alerts:
        assert [a.id for a in alerts.list()] == [alert.id]
        with pytest.raises(PermissionDeniedError, match="alert.ack"):
            alerts.ack(alert.id)
        with pytest.raises(PermissionDeniedError, match="monitor.run"):
            alerts.evaluate([rule], [drift(0.1)], now=NOW + 1)
        assert alerts.get(alert.id).acked_by is None
