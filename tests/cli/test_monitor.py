"""``loopml monitor report``: the table, JSON, the HTML file, and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import load_settings
from tests.monitoring.monitored import DEPLOYMENT, HOUR, T0, World, features, make_world, truth

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Two hours of traffic, the second drifted, and labels for the first hour."""
    root = tmp_path_factory.mktemp("monitor-cli")
    world = make_world(load_settings(project_dir=root, environ={}, system_metrics=False))
    calm = features(400, seed=1)
    ids = world.log(calm, [T0 + i * 9_000 for i in range(400)])
    world.log(features(400, seed=2, shift=2.5), [T0 + HOUR + i * 9_000 for i in range(400)])
    world.label(ids[:200], truth(calm)[:200])
    return world


@pytest.fixture
def wide() -> Iterator[None]:
    """A terminal wide enough for the table's ten columns."""
    from loopml.cli._output import console

    before = console._width
    console._width = 160
    yield
    console._width = before


def _invoke(world: World, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(world.settings.home), *args])
    return result.exit_code, result.output


@pytest.mark.usefixtures("wide")
def test_report_table_shows_drift_and_late_label_accuracy(world: World) -> None:
    code, out = _invoke(world, "monitor", "report", DEPLOYMENT, "--window", "1h")
    assert code == 0, out
    assert "churn-api: windows of 1h" in out
    assert "01-01 00:00" in out and "01-01 01:00" in out
    assert "200 (50%)" in out  # labelled rows and coverage of the first hour
    assert re.search(r"acc 0\.9\d\d", out)
    assert "drifted features in the current window: a" in out


def test_report_json(world: World) -> None:
    code, out = _invoke(world, "monitor", "report", DEPLOYMENT, "-w", "200rows", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["deployment"] == DEPLOYMENT and report["window"] == "200rows"
    assert [w["rows"] for w in report["windows"]] == [200, 200, 200, 200]
    [first] = report["windows"][0]["versions"]
    assert first["labelled"] == 200 and first["performance"]["accuracy"] > 0.9


def test_report_html_is_self_contained(world: World, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = _invoke(world, "monitor", "report", DEPLOYMENT, "--html", str(target))
    assert code == 0, out
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    assert "Drift over time" in page and "Performance over time" in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and not any("src=" in tag for tag in scripts)  # everything inline
    assert "cdn.plot.ly/plotly" not in page
    assert not list(tmp_path.glob(".report.html.*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no deployment 'nope'"),
        ([DEPLOYMENT, "--window", "2x"], "window '2x' is not a window spec"),
        ([DEPLOYMENT, "--html", "/nonexistent/dir/r.html"], "/nonexistent/dir"),
    ],
)
def test_bad_input_is_one_line(world: World, args: list[str], message: str) -> None:
    home = str(world.settings.home)
    result = subprocess.run(
        [sys.executable, "-m", "loopml", "--home", home, "monitor", "report", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and not result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--window", "5x"], "window '5x' is not a window spec"),
        (["prometheus-rules", "--output", "/nonexistent/dir/x.yml"], "/nonexistent/dir"),
    ],
)
def test_other_monitor_commands_refuse_bad_input_in_one_line(
    world: World, args: list[str], message: str
) -> None:
    home = str(world.settings.home)
    result = subprocess.run(
        [sys.executable, "-m", "loopml", "--home", home, "monitor", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
