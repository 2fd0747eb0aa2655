"""The fast demo end to end: ``loopml demo --fast`` in a subprocess, as a user runs it.

It trains on January-February, serves through a real ``loopml serve`` process, replays a
sample of March-July with late labels and lets the loop controller act; then the store,
the audit chain and the report are checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.core import load_settings
from loopml.governance import list_audit
from loopml.loop import LoopController
from loopml.store import open_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _loopml(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "loopml", "--home", str(home), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _fast_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("demo")
    home, report = root / ".loopml", root / "report"
    done = _loopml(home, "demo", "--fast", "--report", str(report), cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return home, report, done.stdout


def _check_retrains_on_drift_and_beats_static(fast_demo: tuple[Path, Path, str]) -> None:
    home, report, out = fast_demo
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary) == {"metric", "static", "loop", "oracle", "retrains", "oracle_retrains"}
    assert summary["metric"] == "roc_auc"
    assert summary["loop"] >= summary["static"], summary
    assert summary["retrains"] >= 1 and summary["oracle_retrains"] >= 1
    with LoopController(load_settings(home=home, environ={})) as controller:
        retrains = controller.history("flights", kind="retrain", limit=1000)
    assert any("drifted" in d.reason for d in retrains), [d.reason for d in retrains]
    assert len(retrains) == summary["retrains"]
    assert "ROC AUC per month" in out and "static" in out and "oracle" in out


def _check_every_decision_is_audited(fast_demo: tuple[Path, Path, str]) -> None:
    home, _, _ = fast_demo
    settings = load_settings(home=home, environ={})
    with LoopController(settings) as controller:
        decisions = controller.history("flights", limit=10_000)
    assert decisions
    store = open_store(settings.db_url)
    try:
        with store.read() as conn:
            audited = list_audit(conn, limit=100_000, action="loop.")
    finally:
        store.close()
    audited_ids = {json.loads(entry.after)["decision"] for entry in audited if entry.after}
    assert {d.id for d in decisions} <= audited_ids
    verify = _loopml(home, "audit", "verify", cwd=home.parent)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _check_report_is_self_contained(fast_demo: tuple[Path, Path, str]) -> None:
    _, report, _ = fast_demo
    page = (report / "index.html").read_text(encoding="utf-8")
    # plotly.js is inline: no script or stylesheet is fetched from anywhere
    assert not re.search(r"<script[^>]*\bsrc=", page) and not re.search(r"<link[^>]*href=", page)
    assert page.count("<script") >= 2  # the library and at least one chart
    for heading in ("ROC AUC per month", "Drift per feature", "Loop decisions", "Lineage"):
        assert heading in page
    assert "flight-delay@1" in page


def test_the_fast_demo_end_to_end(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One test, so the demo runs once even when pytest-xdist spreads tests over workers."""
    demo = _fast_demo(tmp_path_factory)
    _check_retrains_on_drift_and_beats_static(demo)
    _check_every_decision_is_audited(demo)
    _check_report_is_self_contained(demo)
