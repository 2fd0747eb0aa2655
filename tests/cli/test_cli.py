"""The command line, in-process: tables, JSON for scripts, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import load_settings
from loopml.store import HEAD_REVISION
from loopml.tracking import Client

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store holding two runs in experiment 'exp'."""
    home = tmp_path / ".loopml"
    client = Client(load_settings(home=home, system_metrics=False))
    for lr, acc in ((0.1, 0.8), (0.01, 0.9)):
        with client.start_run("exp", name=f"lr-{lr}", params={"lr": lr}) as run:
            run.log_metric("acc", acc)
            run.log_text("weights", "model.txt")
    client.close()
    return home


def _invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("loopml 0.")


def test_db_upgrade_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path / "h", "db", "upgrade")
    assert code == 0 and f"schema revision none -> {HEAD_REVISION}" in out
    code, out = _invoke(tmp_path / "h", "db", "upgrade")
    assert code == 0 and "is up to date" in out


def test_experiments_list_json(home: Path) -> None:
    code, out = _invoke(home, "experiments", "list", "--json")
    assert code == 0
    [experiment] = json.loads(out)
    assert experiment["name"] == "exp" and experiment["runs"] == 2


def test_runs_list_table_and_json(home: Path) -> None:
    code, out = _invoke(home, "runs", "list", "-o", "metrics.acc DESC")
    assert code == 0 and "lr-0.01" in out and "acc" in out
    code, out = _invoke(home, "runs", "list", "--json", "-f", "metrics.acc > 0.85")
    runs = json.loads(out)["runs"]
    assert [r["name"] for r in runs] == ["lr-0.01"]
    assert runs[0]["params"] == {"lr": "0.01"}


def test_runs_show_and_compare(home: Path) -> None:
    _, out = _invoke(home, "runs", "list", "--json")
    ids = [r["id"] for r in json.loads(out)["runs"]]
    code, out = _invoke(home, "runs", "show", ids[0][:8])
    assert code == 0 and "model.txt" in out and "loopml.python" in out
    code, out = _invoke(home, "runs", "show", ids[0], "--json")
    assert json.loads(out)["artifacts"][0]["path"] == "model.txt"
    code, out = _invoke(home, "runs", "compare", *ids)
    assert code == 0 and "params.lr" in out and "metrics.acc" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "show", "0123456789abcdef0123456789abcdef"], "no run with id"),
        (["runs", "list", "-e", "nope"], "no experiment named 'nope'"),
        (["runs", "list", "-f", "metrics.acc >"], "expected clauses like"),
    ],
)
def test_sad_errors_are_one_line_with_nonzero_exit(
    home: Path, args: list[str], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "loopml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_sad_missing_store_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "loopml", "--home", str(tmp_path / "none"), "runs", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no loopml store at ")
    assert not (tmp_path / "none").exists()
