"""Prometheus: a collector of the latest monitoring samples and firing alerts for a served
deployment, and a rules file equivalent to loopml's alert rules.

The server does not compute drift itself: ``loopml monitor run`` (or the loop
controller) stores a report per pass, and the collector reads the latest stored report
and the open alerts when Prometheus scrapes ``/metrics``, at most once per ``refresh_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopml.core import Settings
from loopml.monitoring._alerts import Alert
from loopml.monitoring._rules import AlertRule, SampleLike, default_window, format_duration
from loopml.monitoring._windows import parse_window

__all__ = ["SAMPLE_HELP", "MonitoringCollector", "prometheus_rules"]

log = logging.getLogger("loopml.monitoring")

SAMPLE_HELP: Mapping[str, str] = {
    "loopml_drift_share": "Share of features that drifted from the training data (0..1)",
    "loopml_dataset_drifted": "1 when the share of drifted features passes the threshold",
    "loopml_feature_drift_score": "A feature's drift statistic against the training data",
    "loopml_feature_drifted": "1 when the feature drifted",
    "loopml_prediction_drift_score": "Drift of the predictions against the reference",
    "loopml_model_performance": "A model version's metric on labelled predictions",
    "loopml_label_coverage": "Share of the window's predictions that have a label (0..1)",
    "loopml_labelled_rows": "Labelled predictions in the window",
    "loopml_window_rows": "Predictions in the monitoring window",
    "loopml_invalid_inputs": "Feature values in the window that were not of the feature's kind",
    "loopml_latency_ms": "Model latency quantiles in the window, in milliseconds",
    "loopml_error_rate": "Share of the window's predictions that failed",
    "loopml_fallback_rate": "Share of the window's predictions answered by a fallback",
}
ALERT_METRIC = "loopml_alert_firing"
REPORT_TIME_METRIC = "loopml_monitor_report_timestamp_seconds"


@dataclass(frozen=True)
class Snapshot:
    """What the collector exposes: the latest report's samples, its time, open alerts."""

    samples: Sequence[SampleLike]
    report_ms: int | None
    alerts: Sequence[Alert]


def _families(snapshot: Snapshot, deployment: str) -> Iterator[Metric]:
    by_name: dict[str, list[SampleLike]] = {}
    for sample in snapshot.samples:
        by_name.setdefault(sample.name, []).append(sample)
    for name, group in sorted(by_name.items()):
        label_names = sorted({key for sample in group for key in sample.labels})
        family = GaugeMetricFamily(
            name, SAMPLE_HELP.get(name, "loopml monitoring sample"), labels=label_names
        )
        for sample in group:
            family.add_metric([sample.labels.get(k, "") for k in label_names], sample.value)
        yield family
    firing = [alert for alert in snapshot.alerts if alert.state == "firing"]
    label_names = sorted({"rule", "severity"} | {k for a in firing for k in a.labels})
    family = GaugeMetricFamily(
        ALERT_METRIC, "1 for each loopml alert that is firing", labels=label_names
    )
    for alert in firing:
        values = {**alert.labels, "rule": alert.rule, "severity": alert.severity}
        family.add_metric([values.get(k, "") for k in label_names], 1.0)
    yield family
    if snapshot.report_ms is not None:
        stamp = GaugeMetricFamily(
            REPORT_TIME_METRIC,
            "When the latest monitoring report was computed (Unix seconds)",
            labels=["deployment"],
        )
        stamp.add_metric([deployment], snapshot.report_ms / 1000)
        yield stamp


class MonitoringCollector(Collector):
    """A prometheus-client collector for one deployment's latest monitoring samples.

    The samples are those of the newest stored report of ``window`` windows (default:
    ``[monitoring] window`` of ``loopml.toml``, the spec ``loopml monitor run`` uses
    unless told otherwise), so a report run by hand with another window never shows up
    on /metrics. ``load`` returns the
    current :class:`Snapshot` (the default reads the latest stored report and the open
    alerts from the store ``settings`` names). The first scrape loads synchronously;
    later ones answer with the last snapshot and, when it is older than ``refresh_s``,
    reload it in a background thread, so a scrape never waits on the database after the
    first.
    """

    def __init__(
        self,
        settings: Settings,
        deployment: str,
        *,
        refresh_s: float = 5.0,
        load: Callable[[], Snapshot] | None = None,
        window: str | None = None,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.window = default_window(settings) if window is None else parse_window(window).text
        self.refresh_s = refresh_s
        self._load = load or self._load_from_store
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def _load_from_store(self) -> Snapshot:
        from loopml.monitoring._alert_service import Alerts
        from loopml.monitoring._pass import latest_samples

        samples, report_ms = latest_samples(self.settings, self.deployment, self.window)
        with Alerts(self.settings) as alerts:
            open_alerts = alerts.active(self.deployment)
        return Snapshot(samples, report_ms, open_alerts)

    def refresh(self) -> Snapshot:
        """Load a fresh snapshot now (a failure keeps the last one and is logged)."""
        try:
            snapshot = self._load()
        except Exception as exc:  # a scrape must answer even when the store is away
            log.warning("monitoring samples for %s: %s", self.deployment, exc)
            snapshot = self._snapshot or Snapshot((), None, ())
        with self._lock:
            self._snapshot, self._loaded_at = snapshot, time.monotonic()
            self._refreshing = False
        return snapshot

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            snapshot = self._snapshot
            stale = time.monotonic() - self._loaded_at >= self.refresh_s
            start = snapshot is not None and stale and not self._refreshing
            if start:
                self._refreshing = True
        if snapshot is None:
            snapshot = self.refresh()
        elif start:
            threading.Thread(target=self.refresh, name="loopml-monitor-scrape", daemon=True).start()
        return list(_families(snapshot, self.deployment))


def _promql(rule: AlertRule, deployment: str | None) -> str:
    matchers = dict(rule.labels)
    if deployment is not None:
        matchers.setdefault("deployment", deployment)
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(matchers.items()))
    selector = "{" + inner + "}" if inner else ""
    return f"{rule.metric}{selector} {rule.comparison} {rule.threshold!r}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_rules(
    rules: Iterable[AlertRule], *, group: str = "loopml", deployment: str | None = None
) -> str:
    """A Prometheus rules file (YAML) with one alerting rule per loopml rule.

    Each rule compares the gauge the collector exposes under the sample's name, with
    the same matchers, comparison, threshold, ``for`` and severity; ``deployment``
    limits every rule to one deployment. ``promtool check rules`` accepts the file.
    """
    entries = []
    for rule in rules:
        entries.append(
            {
                "alert": rule.name,
                "expr": _promql(rule, deployment),
                "for": format_duration(rule.for_s),
                "labels": {"severity": rule.severity, "source": "loopml"},
                "annotations": {
                    "summary": rule.describe(),
                    "description": (
                        f"{rule.condition} held for {format_duration(rule.for_s)}"
                        " on deployment {{ $labels.deployment }} (value {{ $value }})"
                    ),
                },
            }
        )
    document = {"groups": [{"name": group, "rules": entries}]}
    header = "# Generated by `loopml monitor prometheus-rules`: alerting rules equal to loopml's.\n"
    import yaml  # only for writing rule files: not on a server's start-up path

    body: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
    return header + body
