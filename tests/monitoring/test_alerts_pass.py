"""``run_monitoring`` and ``loopml monitor run|rules|prometheus-rules|alerts`` on a real
deployment: logged traffic drifts, the drift alert fires, its webhook gets the POST, its
event is raised; traffic comes back and the alert resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import load_commands
from loopml.core import NotFoundError, Settings, load_settings
from loopml.monitoring import Alerts, run_monitoring
from loopml.pipelines import Scheduler
from tests.monitoring.alert_helpers import webhook_receiver
from tests.monitoring.monitored import DEPLOYMENT, World, features, make_world

pytestmark = pytest.mark.slow

WINDOW = "200rows"


def drifted(rows: int, seed: int) -> object:
    frame = features(rows, seed=seed, shift=3.0)
    frame["b"] = frame["b"] * 4 + 5  # both features move: share of drifted features 1.0
    return frame


def config(root: Path, webhook: str) -> None:
    (root / "loopml.toml").write_text(f'[monitoring]\nwebhook = "{webhook}"\n', encoding="utf-8")


@pytest.fixture
def world(tmp_path: Path) -> World:
    settings = load_settings(
        project_dir=tmp_path, environ={}, home=tmp_path / ".loopml", system_metrics=False
    )
    return make_world(settings)


def test_a_pass_fires_notifies_raises_and_resolves(world: World, tmp_path: Path) -> None:
    settings = world.settings
    import time

    now_ms = int(time.time() * 1000)
    with webhook_receiver() as receiver:
        config(tmp_path, receiver.url)
        quiet = run_monitoring(settings, window=WINDOW)
        assert (quiet.reports, quiet.skipped, quiet.changes) == ({}, [DEPLOYMENT], [])

        world.log(features(200, seed=1), now_ms)
        calm = run_monitoring(settings, window=WINDOW)
        assert list(calm.reports) == [DEPLOYMENT]
        assert [c.alert.rule for c in calm.fired] == []

        world.log(drifted(200, seed=2), now_ms + 1)
        hot = run_monitoring(settings, window=WINDOW)
        fired = {c.alert.rule: c.alert for c in hot.fired}
        assert set(fired) == {"dataset_drift", "prediction_drift"}
        alert = fired["dataset_drift"]
        assert (alert.labels, alert.value) == ({"deployment": DEPLOYMENT}, 1.0)
        psi = fired["prediction_drift"]
        assert psi.labels == {"deployment": DEPLOYMENT, "statistic": "psi"}
        assert psi.value is not None and psi.value >= 0.25
        assert {d.alert.id for d in hot.deliveries if d.delivery.ok} == {
            a.id for a in fired.values()
        }
        assert {(e.name, e.error) for e in hot.events} == {
            (f"alert.{rule}", None) for rule in fired
        }
        assert {b["alert"]["id"] for b in receiver.bodies} == {a.id for a in fired.values()}

        again = run_monitoring(settings, window=WINDOW)  # still drifted: nothing new
        assert (again.changes, again.deliveries, again.events) == ([], [], [])

        world.log(features(200, seed=3), now_ms + 2)
        back = run_monitoring(settings, window=WINDOW)
        assert {c.alert.id for c in back.resolved} == {a.id for a in fired.values()}
        states = [(b["alert"]["rule"], b["alert"]["state"]) for b in receiver.bodies]
        assert sorted(states) == [
            ("dataset_drift", "firing"),
            ("dataset_drift", "resolved"),
            ("prediction_drift", "firing"),
            ("prediction_drift", "resolved"),
        ]
    with Scheduler(settings) as scheduler:
        events = scheduler.events("alert.dataset_drift")
    assert [e.payload["id"] for e in events] == [alert.id]


def test_a_named_deployment_must_exist(world: World) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        run_monitoring(world.settings, ["nope"], window=WINDOW)


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    app = load_commands(["monitor"])
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["--home", str(root / ".loopml"), *args],
        env={"LOOPML_SYSTEM_METRICS": "false"},
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_commands(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.chdir(tmp_path)
    now_ms = int(time.time() * 1000)
    world.log(features(200, seed=5), now_ms)  # the prediction-drift reference window
    world.log(drifted(200, seed=4), now_ms + 1)
    code, out, _ = cli(tmp_path, "monitor", "run", "--window", WINDOW, "-d", DEPLOYMENT)
    assert code == 0, out
    assert f"reports: {DEPLOYMENT}" in out
    assert "firing   dataset_drift [warning]" in out
    assert "firing   prediction_drift [warning]" in out
    assert "alert.dataset_drift #" in out

    code, out, _ = cli(tmp_path, "monitor", "run", "--window", WINDOW, "--json")
    assert code == 0 and json.loads(out)["changes"] == []

    code, out, _ = cli(
        tmp_path, "monitor", "alerts", "list", "-s", "firing", "-r", "dataset_drift", "--json"
    )
    (listed,) = json.loads(out)
    assert (listed["rule"], listed["deployment"]) == ("dataset_drift", DEPLOYMENT)

    code, out, _ = cli(tmp_path, "monitor", "alerts", "ack", listed["id"], "-m", "on it")
    assert code == 0 and "acknowledged" in out
    code, out, _ = cli(tmp_path, "monitor", "alerts", "show", listed["id"], "--json")
    shown = json.loads(out)
    assert [t["kind"] for t in shown["transitions"]] == ["firing", "event", "acknowledged"]
    assert shown["transitions"][-1]["detail"] == "on it"

    code, out, _ = cli(tmp_path, "monitor", "rules", "--json")
    assert "dataset_drift" in {r["name"] for r in json.loads(out)}

    target = tmp_path / "rules.yml"
    code, _, _ = cli(tmp_path, "monitor", "prometheus-rules", "--output", str(target))
    assert code == 0 and "alert: dataset_drift" in target.read_text()

    with pytest.raises(NotFoundError, match="no alert 'nope'"):
        cli(tmp_path, "monitor", "alerts", "ack", "nope")


def test_a_pass_without_deployments_changes_nothing(settings: Settings) -> None:
    # runs the evaluation path of a pass on PostgreSQL too: no deployments, no changes
    result = run_monitoring(settings)
    assert (result.reports, result.changes, result.errors) == ({}, [], {})
    with Alerts(settings) as alerts:
        assert alerts.list() == []
