"""Pipelines: loopml against DVC pipelines on a chain of 20 no-op steps, run then re-run.

loopml runs the chain in-process (``Pipeline.run``, executor ``local``); DVC runs ``dvc repro``
on a ``dvc.yaml`` of 20 chained stages. The first run executes every step on a fresh store;
the second, with nothing changed, must reuse every one. loopml's goals are absolute seconds
(``max_seconds``); the ratio to DVC is reported alongside.
"""

from __future__ import annotations

from bench._suite import Figures, Side, Suite
from bench.suites.versioning import DVC_PEER

__all__ = ["PIPELINES"]

WORKLOADS = ("noop_20_steps", "cached_rerun_20_steps")


def check(loopml: Figures, peer: Figures) -> list[str]:
    """The first run executed every step; the re-run executed none and reused every one."""
    errors: list[str] = []
    for figures in (loopml, peer):
        for workload in WORKLOADS:
            found = figures[workload]
            if not found["ok"]:
                expected = "all executed" if workload == "noop_20_steps" else "all reused"
                errors.append(
                    f"{workload}: {figures['package']} executed {found['executed']} and reused "
                    f"{found['reused']} of {found['steps']} steps; expected {expected}"
                )
    return errors


PIPELINES = Suite(
    name="pipelines",
    summary="a chain of 20 no-op steps: first run on a fresh store; re-run fully cached",
    peer="dvc",
    loopml_side=Side("bench.sides.pipelines_loopml"),
    peer_side=Side(
        "bench.sides.pipelines_dvc",
        env=DVC_PEER,
        # No network: analytics off (also set in the repo's config), no update check.
        extra_env={"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"},
    ),
    config={"steps": 20, "repeats": 3},
    goals={},
    max_seconds={"noop_20_steps": 1.0, "cached_rerun_20_steps": 0.5},
    check=check,
)
