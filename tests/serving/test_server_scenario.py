"""The serving walk-through on one live ``loopml serve``, every change made with the
command line: register two versions, serve one, then A/B with weights and sticky keys,
a canary stepped up, a shadow, blue/green with a switch and a rollback, labels over
HTTP and from a file, and a batch score that agrees with the server."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.core import Settings
from loopml.serving import Deployments, DeploymentSpec, Feedback, PredictionLog, route
from tests.serving.live_server import fit_two_runs, serving, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "churn-api"
V1, V2 = "churn@1", "churn@2"
UNKNOWN_ID = "f" * 32


def cli(home: Path, *args: str) -> str:
    """The ``loopml`` command (in this process) on ``home``; its output."""
    from loopml.cli import app

    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, f"loopml {' '.join(args)}: {result.output}"
    return result.output


def records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {"a": round(rng.uniform(-1, 1), 3), "b": round(rng.uniform(-1, 1), 3), "customer": f"k{i}"}
        for i in range(count)
    ]


def routed(settings: Settings, keys: list[str]) -> list[str]:
    """Where the deployment's current spec sends each key."""
    with Deployments(settings) as deployments:
        spec: DeploymentSpec = deployments.get(NAME).spec
    return [route(spec, key, random.Random()).primary for key in keys]


def test_the_serving_walk_through_on_one_live_server(tmp_path: Path) -> None:
    home = tmp_path / ".loopml"
    settings = settings_for(home)
    for run_id in fit_two_runs(settings):
        cli(home, "models", "register", "churn", "--run", run_id)
    cli(home, "deploy", NAME, "--model", V1, "--reason", "launch")
    rows = records(200)
    keys = [row["customer"] for row in rows]
    answered: dict[str, dict[str, Any]] = {}  # prediction id -> the record it answered

    with serving(home, NAME) as server, httpx.Client(timeout=30) as http:
        revision = 1

        def change(*argv: str) -> None:
            nonlocal revision
            cli(home, *argv)
            revision += 1
            server.wait_ready(revision=revision)

        def ask(batch: list[dict[str, Any]]) -> list[str]:
            """The versions that answered ``batch`` (sent as one request)."""
            response = http.post(server.predict_url, json=batch)
            assert response.status_code == 200, response.text
            predictions = response.json()["predictions"]
            assert len(predictions) == len(batch)
            for record, prediction in zip(batch, predictions, strict=True):
                answered[prediction["prediction_id"]] = {**record, **prediction}
            return [p["model_version"] for p in predictions]

        assert ask(rows[:5]) == [V1] * 5

        # A/B: 70/30 by the customer key, each record of a batch routed on its own
        change("deploy", NAME, "--strategy", "ab", "--model", f"{V1}=0.7",
               "--model", f"{V2}=0.3", "--sticky-key", "customer")  # fmt: skip
        arms = ask(rows)
        assert arms == routed(settings, keys)
        assert 0.55 <= arms.count(V1) / len(arms) <= 0.85
        assert [ask([row])[0] for row in rows[:40]] == arms[:40]  # sticky, one at a time

        # a canary at 20%, stepped up to 60%: keys only ever move onto the canary
        change("deploy", NAME, "--strategy", "canary", "--model", V1, "--canary", V2,
               "--weight", "0.2", "--sticky-key", "customer")  # fmt: skip
        small = {k for k, v in zip(keys, ask(rows), strict=True) if v == V2}
        change("deployments", "weight", NAME, "0.6")
        large = {k for k, v in zip(keys, ask(rows), strict=True) if v == V2}
        assert small and small < large and 0.4 <= len(large) / len(keys) <= 0.8

        # a shadow: the caller sees the primary, the log gets both
        change("deploy", NAME, "--strategy", "shadow", "--model", V1, "--shadow", V2)
        shadowed = rows[:20]
        assert ask(shadowed) == [V1] * 20
        shadowed_ids = list(answered)[-20:]

        # blue/green: switch to green, then roll back to blue
        change("deploy", NAME, "--strategy", "bluegreen", "--blue", V1, "--green", V2)
        assert ask(rows[:10]) == [V1] * 10
        change("deployments", "switch", NAME, "--reason", "green is ready")
        assert ask(rows) == [V2] * len(rows)
        green = {pid: a for pid, a in answered.items() if a["model_version"] == V2}
        change("rollback", NAME, "--reason", "green misbehaves")
        assert ask(rows[:10]) == [V1] * 10
        history = json.loads(cli(home, "deployments", "show", NAME, "--json"))["history"]
        assert history[-1]["spec"] == history[-3]["spec"]  # the rollback serves blue again

        # labels over HTTP, found in the server's live log at once
        labelled = list(answered)[:30]
        items = [{"prediction_id": pid, "label": 1} for pid in labelled]
        response = http.post(
            f"{server.base_url}/v1/deployments/{NAME}/feedback",
            json=[*items, {"prediction_id": UNKNOWN_ID, "label": 0}],
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 30, "unknown": [UNKNOWN_ID]}

    # after the server: labels from a file, found in the log's segments
    late = list(answered)[30:60]
    labels_file = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": late, "label": [0] * len(late)}).to_csv(labels_file, index=False)
    assert json.loads(cli(home, "feedback", "import", str(labels_file), "--json")) == {
        "accepted": 30,
        "unknown": [],
    }
    with Feedback(settings) as feedback:
        stored = feedback.labels(NAME)
    assert [(f.prediction_id, f.source) for f in stored] == [
        *((pid, "api") for pid in labelled),
        *((pid, "file:labels.csv") for pid in late),
    ]

    with PredictionLog(settings) as log:
        table = log.scan(NAME)
    logged = table.to_pylist()
    primary = {r["prediction_id"]: r for r in logged if not r["shadow"]}
    assert set(primary) == set(answered)
    assert all(primary[pid]["model_version"] == a["model_version"] for pid, a in answered.items())
    shadows = [r for r in logged if r["shadow"]]
    assert [r["model_version"] for r in shadows] == [V2] * len(shadowed)
    assert sorted(json.loads(r["inputs"])["customer"] for r in shadows) == sorted(
        json.loads(primary[pid]["inputs"])["customer"] for pid in shadowed_ids
    )

    # a batch score with green agrees with what the server answered with green
    source = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    scored_file = tmp_path / "scored.parquet"
    cli(home, "predict", V2, "--input", str(source), "--output", str(scored_file))
    scored = pd.read_parquet(scored_file).set_index("customer")
    assert len(scored) == len(rows) and set(scored["model_version"]) == {V2}
    for answer in green.values():
        row = scored.loc[answer["customer"]]
        assert row["prediction"] == answer["prediction"]
        assert row["proba_1"] == pytest.approx(answer["probabilities"]["1"])
