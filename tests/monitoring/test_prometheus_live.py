"""A real Prometheus scrapes a real ``loopml serve`` under drifting traffic and fires the
drift alert from the rules file ``loopml monitor prometheus-rules`` wrote.

The flow, as an operator runs it: the server exposes the latest stored monitoring report
on /metrics; ``loopml monitor run`` (here, in a loop; in production the loop controller
or a cron) stores a report per pass; Prometheus scrapes, evaluates the generated rules,
and its ``/api/v1/alerts`` lists the drift alert as firing.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.monitoring.monitored import DEPLOYMENT, make_world
from tests.monitoring.test_prometheus import require_prometheus
from tests.serving.live_server import free_port, loopml, serving, settings_for, wait_until

pytestmark = pytest.mark.slow

WINDOW = "100rows"
CALM_ROWS = 100  # the first window: the prediction-drift reference
DRIFTED_ROWS = 200  # bounded: two windows of drifted records
ALERT = "dataset_drift"
PASSES_TIMEOUT_S = 90.0
ALERT_TIMEOUT_S = 90.0

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: loopml
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@contextlib.contextmanager
def prometheus(root: Path, rules: Path, target_port: int) -> Iterator[str]:
    """``prometheus`` on 127.0.0.1 scraping the target every second; its base URL."""
    config = root / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(rules=rules, port=target_port))
    port = free_port()
    log_path = root / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 60, "prometheus ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def records(rows: int, *, drifted: bool) -> list[dict[str, float]]:
    from tests.monitoring.monitored import features

    frame = features(rows, seed=7 if drifted else 8, shift=3.0 if drifted else 0.0)
    if drifted:
        frame["b"] = frame["b"] * 4 + 5
    return [{"a": float(r.a), "b": float(r.b)} for r in frame.itertuples()]


def firing(url: str, alert: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()
    return [
        a
        for a in answer["data"]["alerts"]
        if a["labels"].get("alertname") == alert and a["state"] == "firing"
    ]


def test_prometheus_fires_the_drift_alert_of_a_drifting_deployment(tmp_path: Path) -> None:
    require_prometheus()
    home = tmp_path / ".loopml"
    make_world(settings_for(home))
    # the scheduled passes' window, which /metrics shows too
    (tmp_path / "loopml.toml").write_text(f'[monitoring]\nwindow = "{WINDOW}"\n')
    rules = tmp_path / "loopml.rules.yml"
    loopml(home, "monitor", "prometheus-rules", "--output", str(rules))
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr

    with serving(home, DEPLOYMENT) as server, prometheus(tmp_path, rules, server.port) as prom:
        traffic = records(CALM_ROWS, drifted=False) + records(DRIFTED_ROWS, drifted=True)
        with httpx.Client(timeout=30) as http:
            for start in range(0, len(traffic), 50):
                answer = http.post(server.predict_url, json=traffic[start : start + 50])
                assert answer.status_code == 200, answer.text

        # the server cuts a log segment every 2 s; a pass sees the records once it has
        def pass_fires() -> bool:
            out = loopml(home, "monitor", "run", "-d", DEPLOYMENT)
            return f"firing   {ALERT}" in out

        wait_until(pass_fires, PASSES_TIMEOUT_S, f"loopml monitor run fires {ALERT}")
        # the server re-reads the stored report at most every 5 s, in the background
        exposed = f'loopml_drift_share{{deployment="{DEPLOYMENT}"}} 1.0'

        def on_metrics() -> bool:
            return exposed in httpx.get(f"{server.base_url}/metrics", timeout=5).text

        wait_until(on_metrics, 30, exposed)

        started = time.monotonic()
        wait_until(lambda: bool(firing(prom, ALERT)), ALERT_TIMEOUT_S, f"{ALERT} firing")
        (alert,) = firing(prom, ALERT)
        assert alert["labels"]["deployment"] == DEPLOYMENT
        assert alert["labels"]["severity"] == "warning"
        assert float(alert["value"]) >= 0.5
        # loopml's own alert is on /metrics as well, and Prometheus has scraped it
        query = f'loopml_alert_firing{{rule="{ALERT}"}}'

        def scraped() -> bool:
            answer = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=5)
            return bool(answer.json()["data"]["result"])

        wait_until(scraped, ALERT_TIMEOUT_S - (time.monotonic() - started), query)
