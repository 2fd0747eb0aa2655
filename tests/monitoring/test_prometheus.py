"""The Prometheus collector on an app's /metrics and the rules file promtool accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from loopml.core import Settings
from loopml.monitoring import (
    DEFAULT_RULES,
    AlertRule,
    Alerts,
    MonitoringCollector,
    prometheus_rules,
)
from loopml.monitoring._prometheus import Snapshot
from tests.monitoring.alert_helpers import drift, sample

REPO = Path(__file__).resolve().parents[2]
ENSURE = REPO / "scripts" / "ensure-prometheus.sh"


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_prometheus() -> None:
    """Install Prometheus with the project's script when missing; skip (fail on CI) if not."""
    if shutil.which("promtool") and shutil.which("prometheus"):
        return
    done = subprocess.run(["sh", str(ENSURE)], capture_output=True, text=True, timeout=600)
    if done.returncode == 0 and shutil.which("promtool") and shutil.which("prometheus"):
        return
    reason = f"Prometheus is not installed and {ENSURE.name} could not install it: {done.stderr}"
    if on_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def scrape(collector: MonitoringCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        family.name: [(s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_the_collector_exposes_samples_and_firing_alerts(settings: Settings) -> None:
    rule = AlertRule(name="drift_high", metric="loopml_drift_share", comparison=">=", threshold=0.5)
    pending_rule = AlertRule(
        name="slow", metric="loopml_latency_ms", comparison=">", threshold=1, for_s=60
    )
    samples = [
        drift(0.75),
        sample("loopml_feature_drift_score", 0.4, feature="age", statistic="psi"),
        sample("loopml_feature_drift_score", 0.02, feature="income", statistic="ks"),
        sample("loopml_latency_ms", 3.5, model_version="churn@1", quantile="0.99"),
    ]
    with Alerts(settings) as alerts:
        alerts.evaluate([rule, pending_rule], samples)
        alerts.evaluate([rule], [drift(0.9, "other")])

    def load() -> Snapshot:
        with Alerts(settings) as alerts:
            return Snapshot(samples, 1_900_000_000_000, alerts.active("churn"))

    found = scrape(MonitoringCollector(settings, "churn", load=load))
    assert found["loopml_drift_share"] == [({"deployment": "churn"}, 0.75)]
    assert sorted(found["loopml_feature_drift_score"], key=lambda s: s[1]) == [
        ({"deployment": "churn", "feature": "income", "statistic": "ks"}, 0.02),
        ({"deployment": "churn", "feature": "age", "statistic": "psi"}, 0.4),
    ]
    # only firing alerts of this deployment; the pending one and "other"'s are not here
    assert found["loopml_alert_firing"] == [
        ({"deployment": "churn", "rule": "drift_high", "severity": "warning"}, 1.0)
    ]
    assert found["loopml_monitor_report_timestamp_seconds"] == [
        ({"deployment": "churn"}, 1_900_000_000.0)
    ]


def test_the_collector_serves_the_last_snapshot_and_refreshes_in_the_background(
    settings: Settings,
) -> None:
    values = iter([0.1, 0.2, 0.3])
    refreshed = threading.Event()

    def load() -> Snapshot:
        value = next(values)
        if value > 0.1:
            refreshed.set()
        return Snapshot([drift(value)], None, [])

    collector = MonitoringCollector(settings, "churn", refresh_s=0, load=load)
    assert scrape(collector)["loopml_drift_share"] == [({"deployment": "churn"}, 0.1)]
    # stale: this scrape answers at once with the old value and starts a refresh
    assert scrape(collector)["loopml_drift_share"] == [({"deployment": "churn"}, 0.1)]
    assert refreshed.wait(10)
    for _ in range(100):  # the refresh thread stores the snapshot right after loading it
        if scrape(collector)["loopml_drift_share"][0][1] != 0.1:
            break
    assert scrape(collector)["loopml_drift_share"][0][1] in (0.2, 0.3)


def test_a_failing_load_keeps_the_scrape_answering(settings: Settings) -> None:
    def load() -> Snapshot:
        raise RuntimeError("database away")

    found = scrape(MonitoringCollector(settings, "churn", load=load))
    assert found["loopml_alert_firing"] == []


def test_the_rules_file_mirrors_loopml_rules(tmp_path: Path) -> None:
    import yaml

    rules = [
        *DEFAULT_RULES,
        AlertRule(
            name="latency_p99",
            metric="loopml_latency_ms",
            labels={"quantile": "0.99"},
            comparison=">=",
            threshold=250,
            for_s=90,
            severity="info",
            summary='p99 "latency" over 250 ms',
        ),
    ]
    document = yaml.safe_load(prometheus_rules(rules, deployment="churn"))
    (group,) = document["groups"]
    by_name = {r["alert"]: r for r in group["rules"]}
    assert set(by_name) == {r.name for r in rules}
    latency = by_name["latency_p99"]
    assert latency["expr"] == 'loopml_latency_ms{deployment="churn",quantile="0.99"} >= 250.0'
    assert (latency["for"], latency["labels"]["severity"]) == ("1m30s", "info")
    assert latency["annotations"]["summary"] == 'p99 "latency" over 250 ms'
    assert by_name["dataset_drift"]["expr"] == 'loopml_drift_share{deployment="churn"} >= 0.5'


def test_promtool_accepts_the_rules_file(tmp_path: Path) -> None:
    require_prometheus()
    rules = [
        *DEFAULT_RULES,
        AlertRule(
            name="label_coverage_low",
            metric="loopml_label_coverage",
            labels={"model_version": 'churn@"2"'},
            comparison="<",
            threshold=0.05,
            for_s="1h30m",
        ),
    ]
    path = tmp_path / "loopml.rules.yml"
    path.write_text(prometheus_rules(rules))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
