"""Webhooks against a real local HTTP server: the Slack-compatible payload, retries,
failures recorded without stopping anything, undelivered alerts sent again."""

from __future__ import annotations

import socket

from loopml.core import Settings
from loopml.monitoring import AlertRule, Alerts, WebhookSender
from tests.monitoring.alert_helpers import drift, webhook_receiver

NOW = 1_900_000_000_000


def fast_sender(retries: int = 2) -> WebhookSender:
    return WebhookSender(timeout_s=2.0, retries=retries, backoff_s=0.01)


def rule(webhook: str | None = None) -> AlertRule:
    return AlertRule(
        name="drift_high",
        metric="loopml_drift_share",
        comparison=">=",
        threshold=0.5,
        severity="critical",
        webhook=webhook,
        summary="features drifted",
    )


def test_firing_and_resolved_alerts_are_posted_once_each(sqlite_settings: Settings) -> None:
    with webhook_receiver() as receiver, Alerts(sqlite_settings) as alerts:
        rules = [rule(receiver.url)]
        # Alerts.notify reads updated_ms against the real clock: evaluate "now"
        fired = alerts.evaluate(rules, [drift(0.75)])
        deliveries = alerts.notify(rules, sender=fast_sender())
        assert [(d.delivery.ok, d.delivery.status, d.alert.state) for d in deliveries] == [
            (True, 200, "firing")
        ]
        assert alerts.notify(rules, sender=fast_sender()) == []  # delivered: not again
        alerts.evaluate(rules, [drift(0.75)])  # still firing: nothing new to say
        assert alerts.notify(rules, sender=fast_sender()) == []
        alerts.evaluate(rules, [drift(0.1)])
        assert [d.alert.state for d in alerts.notify(rules, sender=fast_sender())] == ["resolved"]

        firing, resolved = receiver.bodies
        assert firing["text"].startswith("[CRITICAL] drift_high is firing on churn")
        assert "features drifted" in firing["text"] and "0.75" in firing["text"]
        assert firing["blocks"][0]["type"] == "header"
        assert firing["attachments"][0]["color"] == "#d62728"
        assert firing["alert"]["id"] == fired[0].alert.id
        assert firing["alert"]["labels"] == {"deployment": "churn"}
        assert (firing["alert"]["value"], firing["alert"]["threshold"]) == (0.75, 0.5)
        assert resolved["text"].startswith("[RESOLVED] drift_high on churn")
        assert resolved["alert"]["state"] == "resolved"
        kinds = [t.kind for t in alerts.transitions(fired[0].alert.id)]
        assert kinds == ["firing", "notified", "resolved", "notified"]


def test_server_errors_are_retried_with_backoff(sqlite_settings: Settings) -> None:
    waits: list[float] = []
    sender = WebhookSender(timeout_s=2.0, retries=3, backoff_s=0.01, sleep=waits.append)
    with webhook_receiver(answers=[503, 500]) as receiver, Alerts(sqlite_settings) as alerts:
        alerts.evaluate([rule(receiver.url)], [drift(0.9)])
        (delivery,) = alerts.notify([rule(receiver.url)], sender=sender)
        assert (delivery.delivery.ok, delivery.delivery.attempts) == (True, 3)
        assert receiver.requests == 3 and len(receiver.bodies) == 1
        assert waits == [0.01, 0.02]


def test_a_refusing_webhook_is_recorded_and_not_retried(sqlite_settings: Settings) -> None:
    with webhook_receiver(answers=[404]) as receiver, Alerts(sqlite_settings) as alerts:
        alert = alerts.evaluate([rule(receiver.url)], [drift(0.9)])[0].alert
        (delivery,) = alerts.notify([rule(receiver.url)], sender=fast_sender())
        assert (delivery.delivery.ok, delivery.delivery.status) == (False, 404)
        assert receiver.requests == 1
        last = alerts.transitions(alert.id)[-1]
        assert last.kind == "notify_failed"
        assert last.detail is not None and "HTTP 404" in last.detail


def test_an_unreachable_webhook_fails_fast_and_is_sent_again_later(
    sqlite_settings: Settings,
) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    with Alerts(sqlite_settings) as alerts:
        rules = [
            rule(dead),
            AlertRule(name="drift_any", metric="loopml_drift_share", comparison=">", threshold=0.0),
        ]
        alerts.evaluate(rules, [drift(0.9)])
        sender = fast_sender()
        deliveries = alerts.notify(rules, default_webhook=dead, sender=sender)
        # the second alert to the same dead URL is not retried again in this pass
        assert [(d.delivery.ok, d.delivery.attempts) for d in deliveries] == [
            (False, 3),
            (False, 0),
        ]
        assert all(d.delivery.error for d in deliveries)
        assert "skipped" in str(deliveries[1].delivery.error)
        # the next pass (a new sender) delivers what was not delivered
        with webhook_receiver() as receiver:
            again = alerts.notify(
                [rule(receiver.url), rules[1]], default_webhook=receiver.url, sender=fast_sender()
            )
            assert sorted(d.alert.rule for d in again if d.delivery.ok) == [
                "drift_any",
                "drift_high",
            ]
            assert len(receiver.bodies) == 2


def test_no_webhook_means_nothing_is_sent(sqlite_settings: Settings) -> None:
    with Alerts(sqlite_settings) as alerts:
        alerts.evaluate([rule()], [drift(0.9)])
        assert alerts.notify([rule()]) == []
