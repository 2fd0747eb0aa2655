"""Monitoring: data and prediction drift, late-label performance, operations, reports, alerts."""

from loopml.monitoring._alert_service import AlertDelivery, AlertEvent, Alerts, event_name
from loopml.monitoring._alerts import Alert, AlertChange, AlertTransition
from loopml.monitoring._drift import compute_drift, detect_drift
from loopml.monitoring._drift_model import DriftResult, DriftThresholds, FeatureDrift, FeatureRule
from loopml.monitoring._html import render_html, write_html_report
from loopml.monitoring._monitor import Monitor
from loopml.monitoring._pass import MonitorPass, run_monitoring
from loopml.monitoring._prometheus import MonitoringCollector, prometheus_rules
from loopml.monitoring._reference import reference_profile
from loopml.monitoring._report import MetricSample, MonitorReport, VersionWindow, WindowReport
from loopml.monitoring._rules import DEFAULT_RULES, AlertRule, load_rules
from loopml.monitoring._sketch import DriftSketch
from loopml.monitoring._webhook import Delivery, WebhookSender, slack_payload
from loopml.monitoring._windows import WindowSpec, parse_window

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
    "DriftResult",
    "DriftSketch",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureRule",
    "MetricSample",
    "Monitor",
    "MonitorPass",
    "MonitorReport",
    "MonitoringCollector",
    "VersionWindow",
    "WebhookSender",
    "WindowReport",
    "WindowSpec",
    "compute_drift",
    "detect_drift",
    "event_name",
    "load_rules",
    "parse_window",
    "prometheus_rules",
    "reference_profile",
    "render_html",
    "run_monitoring",
    "slack_payload",
    "write_html_report",
]
