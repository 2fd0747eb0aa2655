"""A real pipeline on a real local Ray cluster (started and stopped by the tests, 127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.core import Settings
from loopml.pipelines import PipelineRuns
from tests.pipelines import sample_pipes
from tests.pipelines.sample_pipes import calls

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def test_a_pipeline_runs_on_ray_caches_and_reports_failures(
    ray_cluster: str, sqlite_settings: Settings, workdir: str, tmp_path: Path
) -> None:
    run = sample_pipes.numbers.run(
        {"workdir": workdir, "n": 7},
        settings=sqlite_settings,
        executor="ray",
        ray_address=ray_cluster,
    )
    assert run.status == "succeeded", run.error
    assert run.executor == "ray"
    worker_pids = {line.split()[1] for line in Path(workdir, "calls.txt").read_text().splitlines()}
    assert str(os.getpid()) not in worker_pids
    with PipelineRuns(sqlite_settings) as runs:
        assert runs.output(run.id, "report") == {"total": 42, "size": 7, "small": 5, "large": 2}

    again = sample_pipes.numbers.run(
        {"workdir": workdir, "n": 7},
        settings=sqlite_settings,
        executor="ray",
        ray_address=ray_cluster,
    )
    assert {s.status for s in again.steps} == {"cached"}

    flag = tmp_path / "broken"
    flag.touch()
    failed = sample_pipes.branchy.run(
        {"workdir": workdir, "broken_flag": str(flag)},
        settings=sqlite_settings,
        executor="ray",
        ray_address=ray_cluster,
    )
    assert failed.status == "failed" and "gate is broken" in (failed.error or "")
    assert failed.step("count").status == "succeeded"
    assert failed.step("total").status == "skipped"
    assert calls(workdir).count("gate") == 1


def test_the_cli_runs_a_pipeline_file_on_ray(ray_cluster: str, tmp_path: Path) -> None:
    (tmp_path / "tiny_pipe.py").write_text(
        "from loopml.pipelines import pipeline, step\n"
        "@step(cpus=1)\ndef square(x: int) -> int:\n    return x * x\n"
        "@step\ndef plus(a: int, b: int) -> int:\n    return a + b\n"
        "@pipeline\ndef tiny(x: int = 3):\n    plus(square(x), square(2))\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_SYSTEM_METRICS"] = "false"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopml",
            "run",
            "tiny_pipe.py:tiny",
            "-p",
            "x=4",
            "--executor",
            "ray",
            "--ray-address",
            ray_cluster,
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    import json

    record = json.loads(done.stdout)
    assert record["executor"] == "ray" and record["status"] == "succeeded"
    assert [s["status"] for s in record["steps"]] == ["succeeded"] * 3
