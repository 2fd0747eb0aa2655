"""Monitoring: data and prediction drift, late-label performance, operations, reports, alerts."""

from typing import TYPE_CHECKING

from loopml.core import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from loopml.monitoring._alert_service import AlertDelivery, AlertEvent, Alerts, event_name
    from loopml.monitoring._alerts import Alert, AlertChange, AlertTransition
    from loopml.monitoring._drift import compute_drift, detect_drift
    from loopml.monitoring._drift_model import (
        DriftResult,
        DriftThresholds,
        FeatureDrift,
        FeatureRule,
    )
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

# The drift engine needs numpy and pyarrow only; the monitor, alerts and Prometheus
# collector pull in SQLAlchemy, FastAPI and prometheus-client. Names load on first use
# (PEP 562), so a drift check does not pay for the rest in time and memory.
_LAZY = {
    "AlertDelivery": "_alert_service",
    "AlertEvent": "_alert_service",
    "Alerts": "_alert_service",
    "event_name": "_alert_service",
    "Alert": "_alerts",
    "AlertChange": "_alerts",
    "AlertTransition": "_alerts",
    "compute_drift": "_drift",
    "detect_drift": "_drift",
    "DriftResult": "_drift_model",
    "DriftThresholds": "_drift_model",
    "FeatureDrift": "_drift_model",
    "FeatureRule": "_drift_model",
    "render_html": "_html",
    "write_html_report": "_html",
    "Monitor": "_monitor",
    "MonitorPass": "_pass",
    "run_monitoring": "_pass",
    "MonitoringCollector": "_prometheus",
    "prometheus_rules": "_prometheus",
    "reference_profile": "_reference",
    "MetricSample": "_report",
    "MonitorReport": "_report",
    "VersionWindow": "_report",
    "WindowReport": "_report",
    "DEFAULT_RULES": "_rules",
    "AlertRule": "_rules",
    "load_rules": "_rules",
    "DriftSketch": "_sketch",
    "Delivery": "_webhook",
    "WebhookSender": "_webhook",
    "slack_payload": "_webhook",
    "WindowSpec": "_windows",
    "parse_window": "_windows",
}


__getattr__ = _lazy_exports(__name__, _LAZY, globals())


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
