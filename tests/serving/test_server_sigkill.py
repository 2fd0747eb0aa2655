"""SIGKILL a live ``loopml serve`` (durable log on) under load: every prediction whose
response arrived is in the log after recovery, with its inputs and output, once."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from loopml.serving import PredictionLog
from tests.serving.live_server import (
    LiveServer,
    Load,
    loopml,
    prediction_id_of,
    register_two_versions,
    settings_for,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "api"


def body(client: int, seq: int) -> dict[str, Any]:
    """A record no other request sends (``customer`` names client and request)."""
    return {"a": (seq % 97) / 10 - 4.85, "b": client / 4 - 1.0, "customer": f"c{client}-{seq}"}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_under_load_loses_no_answered_prediction(tmp_path: Path, workers: int) -> None:
    home = tmp_path / ".loopml"
    settings = settings_for(home)
    register_two_versions(settings)
    loopml(home, "deploy", NAME, "--strategy", "ab", "--model", "churn@1=0.5",
           "--model", "churn@2=0.5", "--sticky-key", "customer")  # fmt: skip
    server = LiveServer(home, NAME, workers=workers)
    try:
        server.wait_ready()
        with Load(server.predict_url, body) as load:
            wait_until(lambda: len(load.done()) >= 1500, 120, "1,500 answers")
            killed = time.monotonic()
            if workers == 1:
                os.kill(server.process.pid, signal.SIGKILL)  # the uvicorn process itself
                server.process.wait(30)
            else:
                server.kill()  # the process group: the supervisor and every worker
    finally:
        server.stop()
    answered = [e for e in load.done() if e.status == 200]
    assert len(answered) >= 1500
    failed = [e for e in load.done() if e.status != 200 and e.started < killed]
    assert len(failed) <= load.clients, failed[:3]  # only those in flight at the kill

    with PredictionLog(settings) as log:
        recovered = log.stats.recovered
        table = log.scan(NAME)
    assert not list((home / "predlog").glob("journal-*.log"))  # recovered and removed
    ids = table["prediction_id"].to_pylist()
    assert len(ids) == len(set(ids)), "a prediction is logged twice"
    rows = {row["prediction_id"]: row for row in table.to_pylist()}
    lost = [e for e in answered if prediction_id_of(e) not in rows]
    assert not lost, f"{len(lost)} of {len(answered)} answered predictions lost"
    for e in answered:
        [answer] = e.answer["predictions"]
        row = rows[answer["prediction_id"]]
        assert json.loads(row["inputs"]) == e.body
        assert json.loads(row["output"]) == {
            "prediction": answer["prediction"],
            "probabilities": answer["probabilities"],
        }
        assert row["model_version"] == answer["model_version"] and not row["shadow"]
    print(f"\n{workers} worker(s): {len(answered)} answered, {recovered} recovered from journals")
