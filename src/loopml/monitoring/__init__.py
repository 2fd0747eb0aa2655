"""Monitoring: data and prediction drift, late-label performance, operations, reports, alerts."""

from loopml.monitoring._alert_service import AlertDelivery, AlertEvent, Alerts, event_name
from loopml.monitoring._alerts import Alert, AlertChange, AlertTransition
from loopml.monitoring._rules import DEFAULT_RULES, AlertRule, load_rules
from loopml.monitoring._webhook import Delivery, WebhookSender, slack_payload

__all__ = [
    "DEFAULT_RULES",
    "Alert",
    "AlertChange",
    "AlertDelivery",
    "AlertEvent",
    "AlertRule",
    "AlertTransition",
    "Alerts",
    "Delivery",
    "WebhookSender",
    "event_name",
    "load_rules",
    "slack_payload",
]
