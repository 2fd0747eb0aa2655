"""``loopml loop ...`` as an operator runs it: tick, run, history, status, freeze."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loopml.cli._loop  # noqa: F401 - registers the commands
from loopml.cli._app import app
from loopml.core import Settings, load_settings
from loopml.data import DataCatalog
from loopml.loop import Lease
from loopml.pipelines import run_pipeline
from loopml.serving import Deployments, DeploymentSpec
from loopml.store import open_store
from tests.loop import loop_pipes
from tests.loop.helpers import rows, serve_and_label

runner = CliRunner()
ENV = {"LOOPML_SYSTEM_METRICS": "false"}
TOML = """
[loop.churn-api]
model = "churn"
pipeline = "tests.loop.loop_pipes:train"

[loop.churn-api.triggers]
new_labels = 50

[loop.churn-api.evaluation]
min_rows = 50
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A project folder with a loop policy, ``churn@1`` serving as ``churn-api``."""
    monkeypatch.chdir(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "loopml.toml").write_text(TOML)
    settings = load_settings(project_dir=tmp_path, environ={}, system_metrics=False)
    with DataCatalog(settings) as catalog:
        catalog.ingest(rows(400, rule="a", seed=1), name="events")
    assert run_pipeline(loop_pipes.train, settings=settings).status == "succeeded"
    with Deployments(settings) as deployments:
        deployments.deploy("churn-api", DeploymentSpec.single("churn@1"))
    with DataCatalog(settings) as catalog:
        catalog.ingest(rows(400, rule="b", seed=2), name="events")
    return settings


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 1, f"{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.output


def test_tick_history_status_freeze(project: Settings) -> None:
    code, out = _run("loop", "tick")
    assert code == 0 and "0 decision(s); churn-api: idle" in out
    serve_and_label(project, "churn-api", rows(120, rule="b", seed=10))
    code, out = _run("loop", "tick")
    assert code == 0, out
    assert "retrain churn-api (champion churn@1): 120 new labels since the last retrain" in out
    assert "churn-api: evaluating" in out
    code, out = _run("loop", "history", "--json")
    [decision] = json.loads(out)
    assert decision["kind"] == "retrain" and decision["actor"] == "loop-controller"
    assert decision["evidence"]["triggers"][0]["trigger"] == "new_labels"
    code, out = _run("loop", "history", "churn-api", "--kind", "retrain")
    assert code == 0 and "retrain" in out and "churn@1" in out
    code, out = _run("loop", "status", "--json")
    [row] = json.loads(out)["deployments"]
    assert row["state"] == "evaluating" and row["candidate"] == "churn@2" and not row["frozen"]
    code, out = _run("loop", "freeze", "churn-api", "--reason", "audit week")
    assert code == 0 and "loop frozen for churn-api" in out
    code, out = _run("loop", "status")
    assert "churn-api" in out and "yes" in out and "lease: free" in out
    code, out = _run("loop", "unfreeze", "churn-api")
    assert code == 0 and "unfrozen" in out
    code, out = _run("loop", "run", "--interval", "0", "--max-ticks", "2")
    assert code == 0, out
    code, out = _run("loop", "history", "--kind", "nap")
    assert code == 1 and "kind must be one of retrain" in out
    code, out = _run("loop", "freeze", "nowhere")
    assert code == 1 and "no deployment 'nowhere' and no loop policy for it" in out


def test_a_tick_while_another_controller_holds_the_lease(project: Settings) -> None:
    store = open_store(project.db_url)
    try:
        assert Lease(store, owner="host-b:42:abc").acquire()
        code, out = _run("loop", "tick")
        assert code == 0 and "another controller holds the loop lease: host-b:42:abc" in out
        code, out = _run("loop", "tick", "--json")
        report = json.loads(out)
        assert report["acted"] is False and report["holder"]["owner"] == "host-b:42:abc"
    finally:
        store.close()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text(
        '[loop.api]\nmodel = "m"\npipeline = "p:x"\n[loop.api.rollout]\n'
        "steps = [{ weight = 0.1 }]\n"
    )
    env = {**os.environ, "LOOPML_HOME": str(tmp_path / ".loopml"), **ENV}
    done = subprocess.run(
        [sys.executable, "-m", "loopml", "loop", "tick"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'loopml.toml'}: loop.api.rollout.steps[0] needs predictions or "
        "seconds (or both)"
    ]
