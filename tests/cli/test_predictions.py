"""``loopml predictions tail`` and ``loopml lineage prediction`` on predictions made by the
real app: a table and JSON lines, following new ones, the lineage tree and its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import Settings
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, DeploymentSpec, PredictionReader
from tests.serving.traced import DEPLOYMENT, ROW, Trained, predict, serving, train

runner = CliRunner()


def _args(settings: Settings) -> list[str]:
    return [
        "--home",
        str(settings.home),
        "--db-url",
        settings.db_url,
        "--artifacts-url",
        settings.artifacts_url,
    ]


def _ok(settings: Settings, *argv: str) -> str:
    result = runner.invoke(app, [*_args(settings), *argv])
    assert result.exit_code == 0, result.output
    return result.output


def _deployed(settings: Settings) -> Trained:
    trained = train(settings)
    with ModelRegistry(settings) as registry:
        registry.set_alias("churn@1", "staging")
    with Deployments(settings) as deployments:
        deployments.deploy(DEPLOYMENT, DeploymentSpec.single("churn@staging"))
        deployments.deploy("idle", DeploymentSpec.single("churn@1"))
    return trained


def _one_by_one(client: Any, count: int) -> list[str]:
    """Predictions in distinct milliseconds, so that their order is their ids' order."""
    ids = []
    for i in range(count):
        [answer] = predict(client, {**ROW, "a": float(i)})
        ids.append(answer["prediction_id"])
        time.sleep(0.003)
    return ids


def test_tail_prints_the_newest_as_a_table_and_as_json_lines(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    _deployed(s)
    with serving(s) as client:
        ids = _one_by_one(client, 4)
        lines = _ok(s, "predictions", "tail", DEPLOYMENT, "-n", "3", "--json").splitlines()
        table = _ok(s, "predictions", "tail", DEPLOYMENT)
    records = [json.loads(line) for line in lines]
    assert [r["prediction_id"] for r in records] == ids[1:]  # the newest three, oldest first
    assert [r["inputs"]["a"] for r in records] == [1.0, 2.0, 3.0]
    assert {r["model_version"] for r in records} == {"churn@1"}
    assert all(r["fallback"] is False and r["latency_ms"] > 0 for r in records)
    assert records[0]["output"]["prediction"] in (0, 1)
    assert f"newest predictions of {DEPLOYMENT}" in table and "churn@1" in table
    # ids and versions never wrap; inputs and output wrap to the terminal's width
    assert table.count("churn@1") == 4 and all(pid in table for pid in ids)

    assert "no predictions logged for idle yet" in _ok(s, "predictions", "tail", "idle")
    unknown = runner.invoke(app, [*_args(s), "predictions", "tail", "nope"])
    assert unknown.exit_code == 1
    assert "no deployment 'nope' and no predictions logged for it" in str(unknown.exception)


def test_lineage_prediction_prints_the_chain_and_json(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    trained = _deployed(s)
    with serving(s) as client:
        [answer] = predict(client, ROW)
        pid = answer["prediction_id"]
        chain = json.loads(_ok(s, "lineage", "prediction", pid, "--json"))
        tree = _ok(s, "lineage", "prediction", pid)
    assert chain["prediction"]["prediction_id"] == pid and chain["deployment_revision"] == 1
    assert chain["model"]["ref"] == "churn@1" and chain["model"]["aliases_then"] == ["staging"]
    assert chain["run"]["id"] == trained.run_id and chain["run"]["git_dirty"] is True
    assert chain["datasets"][0]["ref"] == trained.dataset
    assert chain["datasets"][0]["split"]["name"] == "main"
    assert chain["code_version"] == trained.commit
    for part in (pid, "churn@1", trained.run_id, trained.dataset, trained.commit, "staging"):
        assert part in tree, part
    assert tree.index(pid) < tree.index("churn@1") < tree.index(trained.run_id)
    dataset = tree.index(f"dataset {trained.dataset}")
    assert tree.index(trained.run_id) < dataset < tree.index(trained.commit)

    ghost = "0" * 32
    result = subprocess.run(
        [sys.executable, "-m", "loopml", *_args(s), "lineage", "prediction", ghost],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: no prediction '{ghost}'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_tail_follow_prints_each_new_prediction_once(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    _deployed(s)
    with serving(s) as client:
        old = _one_by_one(client, 3)
        follow = subprocess.Popen(
            [sys.executable, "-m", "loopml", *_args(s), "predictions", "tail", DEPLOYMENT,
             "-n", "2", "--json", "--follow", "--interval", "0.1", "--max-seconds", "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        try:
            assert follow.stdout is not None
            first = [json.loads(follow.stdout.readline())["prediction_id"] for _ in range(2)]
            new = _one_by_one(client, 3)
            out, err = follow.communicate(timeout=60)
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()
    assert follow.returncode == 0, err
    assert first == old[1:]
    assert [json.loads(line)["prediction_id"] for line in out.splitlines()] == new


def test_follow_prints_one_logged_while_the_newest_were_read(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prediction logged just after ``tail`` read the newest n is new to the follow: it
    was once taken as already logged and never printed."""
    s = sqlite_settings
    _deployed(s)
    with serving(s) as client:
        old = _one_by_one(client, 3)
        late: list[str] = []
        read_tail = PredictionReader.tail

        def tail_then_predict(self: PredictionReader, deployment: str, n: int) -> Any:
            newest = read_tail(self, deployment, n)
            late.extend(_one_by_one(client, 1))
            return newest

        monkeypatch.setattr(PredictionReader, "tail", tail_then_predict)
        args = ["-n", "2", "--json", "--follow", "--interval", "0.1", "--max-seconds", "1"]
        out = _ok(s, "predictions", "tail", DEPLOYMENT, *args)
    assert [json.loads(line)["prediction_id"] for line in out.splitlines()] == old[1:] + late
