"""Helpers for the tracing tests: a model trained from a versioned dataset in a git
checkout, a deployment of it, and the real app serving it in-process."""

from __future__ import annotations

import contextlib
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette now wants httpx2 for its test client
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from loopml.artifacts import ArtifactStore
from loopml.core import Settings
from loopml.data import DataCatalog, SplitSpec
from loopml.registry import ModelRegistry
from loopml.serving import create_app
from loopml.serving._predlog_record import table_from_bytes
from loopml.store import open_store, schema

DEPLOYMENT = "churn-api"
ROW = {"a": 0.5, "b": -0.2, "c": 1.0}


@dataclass
class Trained:
    settings: Settings
    dataset: str  # name@version
    run_id: str
    commit: str  # HEAD of the project's checkout when the model was trained


def git_checkout(folder: Path) -> str:
    """Make ``folder`` a git checkout with one commit and an uncommitted change; its HEAD."""
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    (folder / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "train.py"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=folder, check=True)
    (folder / "train.py").write_text("print('v2')\n")  # tracked and changed: dirty
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


def frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    data = pd.DataFrame(x, columns=["a", "b", "c"])
    data["label"] = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    return data


def train(settings: Settings) -> Trained:
    """``churn@1``: a logistic regression fitted by ``loopml.training.fit`` on the stored
    split ``main`` of dataset ``churn@1``, in a dirty git checkout."""
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    commit = git_checkout(settings.project_dir)
    with DataCatalog(settings) as catalog:
        ref = catalog.ingest(frame(), name="churn").version.ref
        catalog.split(ref, SplitSpec(kind="stratified", column="label"), name="main")
    result = fit(
        LogisticRegression(C=0.5),
        ref,
        target="label",
        split="main",
        settings=settings,
        cv=0,
        experiment="churn-exp",
    )
    with ModelRegistry(settings) as registry:
        registry.register("churn", run_id=result.run_id)
    return Trained(settings, ref, result.run_id, commit)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    """The real app serving :data:`DEPLOYMENT`, ready."""
    with TestClient(create_app(settings, DEPLOYMENT)) as client:
        wait_for_revision(client, 1)
        yield client


def wait_for_revision(client: TestClient, revision: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        ready = client.get("/readyz")
        if ready.status_code == 200 and ready.json()["revision"] >= revision:
            return
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.05)


def predict(client: TestClient, body: Any) -> list[dict[str, Any]]:
    answer = client.post(f"/v1/deployments/{DEPLOYMENT}/predict", json=body)
    assert answer.status_code == 200, answer.text
    predictions: list[dict[str, Any]] = answer.json()["predictions"]
    return predictions


def in_a_segment(settings: Settings, prediction_id: str) -> bool:
    """Whether a segment holds ``prediction_id`` (else it is only journaled, if logged)."""
    segs = schema.prediction_segments
    store = open_store(settings.db_url)
    try:
        with store.read() as conn:
            query = sa.select(segs.c.digest).where(
                segs.c.first_id <= prediction_id, segs.c.last_id >= prediction_id
            )
            digests = list(conn.scalars(query))
    finally:
        store.close()
    artifacts = ArtifactStore(settings.artifacts_url)
    return any(
        prediction_id in table_from_bytes(artifacts.get_bytes(d))["prediction_id"].to_pylist()
        for d in digests
    )
