"""Tracking: loopml against MLflow on metric logging, run creation and run search."""

from __future__ import annotations

from bench._env import PEERS
from bench._suite import Figures, Side, Suite

__all__ = ["TRACKING"]


def check(loopml: Figures, peer: Figures) -> list[str]:
    """Every logged value is stored; both sides find the same runs, all expected, in order."""
    errors: list[str] = []
    ours, theirs = loopml["search_runs"], peer["search_runs"]
    if ours["returned"] != theirs["returned"]:
        errors.append(
            f"search_runs: loopml returned {ours['returned']} runs, "
            f"mlflow returned {theirs['returned']}; they must match"
        )
    for figures in (loopml, peer):
        logged = figures["log_metric"]
        if not logged["stored_ok"]:
            errors.append(
                f"log_metric: {figures['package']} stored {logged['stored_points']} loss points "
                f"after the run ended; expected {logged['calls']} with values 0.0, 1.0, ... by step"
            )
        found = figures["search_runs"]
        if found["returned"] != found["expected"]:
            errors.append(
                f"search_runs: {figures['package']} returned {found['returned']} runs; "
                f"the seeded data has {found['expected']} with m0 above the threshold"
            )
        if not found["ordered"]:
            errors.append(f"search_runs: {figures['package']} did not order by metrics.m1 DESC")
    return errors


TRACKING = Suite(
    name="tracking",
    summary="log_metric x10,000 in one run; 1,000 runs with 10 params + 10 metrics; search",
    peer="mlflow",
    loopml_side=Side("bench.sides.tracking_loopml"),
    peer_side=Side(
        "bench.sides.tracking_mlflow",
        env=PEERS,
        # No network: no tracking server (a sqlite:/// URI is set in the script), no telemetry.
        extra_env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
    ),
    config={
        "log_metric_calls": 10_000,
        "runs": 1_000,
        "params_per_run": 10,
        "metrics_per_run": 10,
        "seed": 20240601,
        "search_threshold": 0.5,
        "search_max_results": 1_000,
        "search_repeats": 5,
    },
    goals={"log_metric": 100.0, "create_runs": 20.0, "search_runs": 20.0},
    scalable=("log_metric_calls", "runs"),
    check=check,
)
