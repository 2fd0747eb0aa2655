"""A live ``loopml serve`` under steady load while its deployment changes through the
command line (a blue/green switch, a rollback, a canary and a weight step): no request
fails, each connection moves to the new revision and never back, and every answered
prediction is in the log afterwards."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopml.core import Settings
from loopml.serving import Deployments, DeploymentSpec, PredictionLog, route
from tests.serving.live_server import (
    Exchange,
    Load,
    failures,
    loopml,
    prediction_id_of,
    register_two_versions,
    serving,
    settings_for,
    version_of,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAME = "api"
V1, V2 = "churn@1", "churn@2"
UNUSED_RNG = random.Random(0)
SWITCH_BOUND_S = 20.0  # generous: a loaded 2-core machine; the docs say about a second


def body(client: int, seq: int) -> dict[str, Any]:
    """A record of client ``client``: 16 sticky keys per client, in turn."""
    rng = random.Random(client * 1_000_003 + seq)
    return {
        "a": round(rng.uniform(-2, 2), 4),
        "b": round(rng.uniform(-2, 2), 4),
        "customer": f"c{client}-{seq % 16}",
    }


@dataclass(frozen=True)
class Phase:
    """A revision of the deployment and when the command that made it ran."""

    spec: DeploymentSpec
    cli_started: float

    def expects(self, e: Exchange) -> str:
        key = e.body["customer"] if self.spec.sticky_key else None
        return route(self.spec, key, UNUSED_RNG).primary  # keyed or not random at all


def _spec(settings: Settings) -> DeploymentSpec:
    with Deployments(settings) as deployments:
        return deployments.get(NAME).spec


def _out_of_order(exchanges: list[Exchange], phases: list[Phase]) -> list[str]:
    """Requests a connection answered from a revision older than one it already served,
    or with a version no revision that could be current would route it to."""
    problems: list[str] = []
    for client in sorted({e.client for e in exchanges}):
        at = 0
        for e in sorted((x for x in exchanges if x.client == client), key=lambda x: x.seq):
            reachable = [
                q for q in range(at, len(phases)) if q == at or phases[q].cli_started < e.finished
            ]
            matching = [q for q in reachable if phases[q].expects(e) == version_of(e)]
            if not matching:
                problems.append(
                    f"client {client} #{e.seq} got {version_of(e)} for {e.body['customer']}; "
                    f"revisions {reachable} route it to {[phases[q].expects(e) for q in reachable]}"
                )
                continue
            at = matching[0]
    return problems


@pytest.mark.parametrize("workers", [1, 2])
def test_switch_rollback_and_canary_under_load_fail_no_request(
    tmp_path: Path, workers: int
) -> None:
    home = tmp_path / ".loopml"
    settings = settings_for(home)
    register_two_versions(settings)
    loopml(home, "deploy", NAME, "--strategy", "bluegreen", "--blue", V1, "--green", V2)
    phases = [Phase(_spec(settings), 0.0)]
    switch_seconds: list[float] = []

    def change(*argv: str) -> None:
        """Run the command under load, then wait until every client has an answer that
        only the new revision gives (on a request sent after the command returned)."""
        started = time.monotonic()
        loopml(home, *argv)
        returned = time.monotonic()
        old, new = phases[-1], Phase(_spec(settings), started)
        phases.append(new)

        def proof(e: Exchange) -> bool:
            version = version_of(e) if e.status == 200 else None
            return version == new.expects(e) != old.expects(e)

        moved: set[int] = set()

        def every_client_moved() -> bool:
            moved.update(
                e.client
                for e in load.done()
                if e.client not in moved and e.started >= returned and proof(e)
            )
            return len(moved) == load.clients

        wait_until(every_client_moved, SWITCH_BOUND_S, f"every client served after {argv}")
        proofs = [e for e in load.done() if e.started >= returned and proof(e)]
        first = [min(e.finished for e in proofs if e.client == c) for c in range(load.clients)]
        switch_seconds.append(max(first) - returned)

    with serving(home, NAME, workers=workers) as server, Load(server.predict_url, body) as load:
        wait_until(lambda: len(load.done()) >= 200, 60, "the first answers")
        change("deployments", "switch", NAME, "--reason", "green is ready")  # V1 -> V2
        change("rollback", NAME, "--reason", "green misbehaves")  # back to V1
        change(
            "deploy", NAME, "--strategy", "canary", "--model", V1, "--canary", V2,
            "--weight", "0.5", "--sticky-key", "customer",
        )  # fmt: skip
        change("deployments", "weight", NAME, "1.0")  # every key on V2
        load.stop()
    exchanges = load.done()

    bad = failures(exchanges, {V1, V2})
    assert not bad, f"{len(bad)} of {len(exchanges)} requests failed, e.g. {bad[:5]}"
    assert not (problems := _out_of_order(exchanges, phases)), problems[:5]
    assert [p.spec.strategy for p in phases] == ["bluegreen"] * 3 + ["canary"] * 2
    print(
        f"\n{workers} worker(s): {len(exchanges)} requests, 0 failed; the slowest client "
        f"saw each change after {', '.join(f'{s:.2f}' for s in switch_seconds)} s"
    )

    answered = {prediction_id_of(e): e for e in exchanges}
    assert len(answered) == len(exchanges)
    with PredictionLog(settings) as log:
        table = log.scan(NAME)
    logged = {row["prediction_id"]: row["model_version"] for row in table.to_pylist()}
    missing = [pid for pid in answered if pid not in logged]
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions not logged"
    assert all(logged[pid] == version_of(e) for pid, e in answered.items())
