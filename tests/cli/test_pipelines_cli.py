"""``loopml run`` and ``loopml pipelines ...`` as a user runs them, on a pipeline file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PIPELINE_FILE = """
from pathlib import Path
from loopml.pipelines import pipeline, step

@step
def load(n: int) -> list:
    print(f"loading {n}")
    return list(range(n))

@step
def check(values: list, flag: str) -> list:
    if Path(flag).exists():
        raise RuntimeError("check failed: flag is set")
    return values

@step
def total(values: list) -> int:
    return sum(values)

@step
def size(values: list) -> int:
    return len(values)

@pipeline
def flow(n: int = 3, flag: str = "broken.flag"):
    values = load(n)
    total(check(values, flag))
    size(values)
"""


def loopml(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_SYSTEM_METRICS"] = "false"
    return subprocess.run(
        [sys.executable, "-m", "loopml", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_run_cache_executors_failure_and_resume(tmp_path: Path) -> None:
    (tmp_path / "flow_pipe.py").write_text(PIPELINE_FILE, encoding="utf-8")

    first = loopml(tmp_path, "run", "flow_pipe.py:flow", "--param", "n=4")
    assert first.returncode == 0, first.stderr
    assert "pipeline flow run" in first.stdout and "succeeded in" in first.stdout
    assert "0/4 steps cached" in first.stdout

    again = loopml(tmp_path, "run", "flow_pipe.py:flow", "-p", "n=4")
    assert again.returncode == 0 and "4/4 steps cached" in again.stdout

    pooled = loopml(
        tmp_path, "run", "flow_pipe.py:flow", "-p", "n=4", "-e", "process", "--no-cache"
    )
    assert pooled.returncode == 0, pooled.stderr
    assert "0/4 steps cached" in pooled.stdout

    runs = json.loads(loopml(tmp_path, "pipelines", "runs", "--json").stdout)
    assert [r["executor"] for r in runs] == ["process", "local", "local"]
    newest = runs[0]["id"]
    shown = json.loads(loopml(tmp_path, "pipelines", "show", newest[:8], "--json").stdout)
    assert [s["name"] for s in shown["steps"]] == ["load", "check", "total", "size"]
    assert all(not s["cache_hit"] for s in shown["steps"])
    assert shown["params"] == {"n": 4, "flag": "broken.flag"}
    cached = json.loads(loopml(tmp_path, "pipelines", "show", runs[1]["id"], "--json").stdout)
    assert all(s["cache_hit"] for s in cached["steps"])
    logs = loopml(tmp_path, "pipelines", "show", runs[2]["id"], "--logs", "load")
    assert "loading 4" in logs.stdout

    listed = json.loads(loopml(tmp_path, "pipelines", "list", "--json").stdout)
    assert [(p["name"], p["runs"]) for p in listed] == [("flow", 3)]

    (tmp_path / "broken.flag").touch()
    failed = loopml(tmp_path, "run", "flow_pipe.py:flow", "-p", "n=5")
    assert failed.returncode == 1
    assert "error: step 'check' failed: RuntimeError: check failed: flag is set" in failed.stderr
    assert "skipped" in failed.stdout
    failed_id = json.loads(loopml(tmp_path, "pipelines", "runs", "--json").stdout)[0]["id"]
    text = loopml(tmp_path, "pipelines", "show", failed_id).stdout
    assert "check" in text and "failed" in text and "error:" in text

    (tmp_path / "broken.flag").unlink()
    resumed = loopml(tmp_path, "pipelines", "resume", failed_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(resumed.stdout)
    assert record["resumed_from"] == failed_id
    steps = {s["name"]: s["status"] for s in record["steps"]}
    assert steps == {"load": "cached", "check": "succeeded", "total": "succeeded", "size": "cached"}


def test_graph_and_bad_input(tmp_path: Path) -> None:
    (tmp_path / "flow_pipe.py").write_text(PIPELINE_FILE, encoding="utf-8")
    mermaid = loopml(tmp_path, "pipelines", "graph", "flow_pipe.py", "--format", "mermaid")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart LR")
    text = loopml(tmp_path, "pipelines", "graph", "flow_pipe.py:flow")
    assert "pipeline flow (4 steps)" in text.stdout

    bad_value = loopml(tmp_path, "run", "flow_pipe.py:flow", "-p", "n=many")
    assert bad_value.returncode == 1
    assert bad_value.stderr.strip() == (
        "error: parameter 'n' from --param must be int; got 'many' "
        "(invalid literal for int() with base 10: 'many')"
    )
    bad_shape = loopml(tmp_path, "run", "flow_pipe.py:flow", "-p", "n")
    assert bad_shape.returncode == 1 and "--param must look like key=value" in bad_shape.stderr
    unknown = loopml(tmp_path, "run", "flow_pipe.py:flow", "-p", "epochs=3")
    assert unknown.returncode == 1 and "has no parameter(s) epochs" in unknown.stderr
    bad_executor = loopml(tmp_path, "run", "flow_pipe.py:flow", "-e", "gpu-farm")
    assert bad_executor.returncode == 1 and "--executor must be one of" in bad_executor.stderr
    missing = loopml(tmp_path, "run", "nowhere.py:flow")
    assert missing.returncode == 1 and "pipeline file nowhere.py does not exist" in missing.stderr
    no_run = loopml(tmp_path, "pipelines", "show", "abcdef123")
    assert no_run.returncode == 1 and "no loopml store" in no_run.stderr
    loopml(tmp_path, "db", "upgrade")
    no_run = loopml(tmp_path, "pipelines", "show", "abcdef123")
    assert no_run.returncode == 1 and "no pipeline run 'abcdef123'" in no_run.stderr
