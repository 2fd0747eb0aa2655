"""``loopml scheduler ...`` and ``loopml events ...`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loopml.cli._scheduler  # noqa: F401 - registers the commands
from loopml.cli._app import app

runner = CliRunner()
PIPES = """
from loopml.pipelines import pipeline, step


@step
def hello(n: int) -> int:
    return n + 1


@pipeline
def tiny(n: int = 1):
    hello(n)
"""


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 1, f"{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.output


@pytest.fixture
def ref(tmp_path: Path) -> str:
    path = tmp_path / "cli_pipes.py"
    path.write_text(PIPES)
    return f"{path}:tiny"


def test_add_list_disable_remove(tmp_path: Path, ref: str) -> None:
    home = tmp_path / ".loopml"
    code, out = _run(
        home, "scheduler", "add", "nightly", "--pipeline", ref, "--cron", "0 3 * * *",
        "--param", "n=4", "--executor", "process",
    )  # fmt: skip
    assert code == 0 and "added nightly" in out and "T03:00Z" in out
    code, out = _run(
        home, "scheduler", "trigger", "fresh", "--pipeline", ref, "--on-dataset", "flights"
    )
    assert code == 0 and "on dataset flights" in out
    code, out = _run(home, "scheduler", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["nightly"]["params"] == {"n": "4"}
    assert listed["nightly"]["executor"] == "process" and listed["nightly"]["kind"] == "cron"
    assert listed["fresh"]["spec"] == "flights" and listed["fresh"]["next"].endswith("after v0")
    code, out = _run(home, "scheduler", "disable", "nightly")
    assert code == 0 and "disabled nightly" in out
    code, out = _run(home, "scheduler", "list")
    assert code == 0 and "nightly" in out and "disabled" in out
    assert _run(home, "scheduler", "enable", "nightly")[0] == 0
    assert _run(home, "scheduler", "remove", "fresh")[0] == 0
    code, out = _run(home, "scheduler", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["nightly"]


def test_event_trigger_fires_once_through_run(tmp_path: Path, ref: str) -> None:
    home = tmp_path / ".loopml"
    code, out = _run(
        home, "scheduler", "trigger", "retrain", "--pipeline", ref, "--on-event", "drift"
    )
    assert code == 0 and "on event drift" in out
    code, out = _run(home, "events", "emit", "drift", "--payload", '{"psi": 0.31}')
    assert code == 0 and "event drift #1" in out
    code, out = _run(home, "scheduler", "run", "--once")
    assert code == 0 and "retrain event:1: succeeded" in out
    code, out = _run(home, "scheduler", "run", "--max-ticks", "2", "--interval", "0")
    assert code == 0 and "retrain" not in out
    code, out = _run(home, "scheduler", "fires", "retrain", "--json")
    fires = json.loads(out)
    assert [(f["slot"], f["status"]) for f in fires] == [("event:1", "succeeded")]
    assert fires[0]["pipeline_run_id"]
    code, out = _run(home, "scheduler", "fires")
    assert code == 0 and "event:1" in out and "succeeded" in out
    code, out = _run(home, "events", "list", "--json")
    assert [(e["name"], e["payload"], e["source"]) for e in json.loads(out)] == [
        ("drift", {"psi": 0.31}, "cli")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["scheduler", "add", "x", "--pipeline", "m:p", "--cron", "61 * * * *"],
            "61 is out of range",
        ),
        (
            ["scheduler", "add", "x", "--pipeline", "m:p", "--cron", "@daily", "-e", "k8s"],
            "executor",
        ),
        (
            ["scheduler", "add", "x", "--pipeline", "m:p", "--cron", "@daily", "--param", "n"],
            "key=value",
        ),
        (["scheduler", "trigger", "x", "--pipeline", "m:p"], "exactly one"),
        (["scheduler", "remove", "nope"], "no schedule named 'nope'"),
        (["events", "emit", "drift", "--payload", "{bad"], "--payload is not JSON"),
    ],
)
def test_errors(tmp_path: Path, args: list[str], message: str) -> None:
    code, out = _run(tmp_path / ".loopml", *args)
    assert code == 1 and message in out


def test_duplicate_name_is_one_line_on_stderr(tmp_path: Path) -> None:
    home = tmp_path / ".loopml"
    assert _run(home, "scheduler", "add", "x", "--pipeline", "m:p", "--cron", "@daily")[0] == 0
    script = (
        "import sys; import loopml.cli._scheduler; from loopml.cli._app import main; "
        "sys.argv = ['loopml'] + sys.argv[1:]; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "--home", str(home), "scheduler", "add", "x",
         "--pipeline", "m:p", "--cron", "@daily"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "error: a schedule named 'x' already exists\n"
