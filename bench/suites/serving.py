"""Serving: ``loopml serve`` against ``mlflow models serve`` on one GradientBoosting model.

Each side trains the same model (same data, same seed), registers it its own way, launches
its server as a user would (one worker, 127.0.0.1) and measures the cold start (launch to
the first 200), latency at concurrency 1 and throughput at concurrency 8 with single-record
requests from the same load generator. loopml keeps its durable prediction log on. loopml's
side also reports a RandomForest of 100 trees served with and without ONNX Runtime.
"""

from __future__ import annotations

from bench._env import PEERS
from bench._suite import Figures, Side, Suite

__all__ = ["SERVING"]

WORKLOADS = ("throughput_c8", "p99_c1", "cold_start")


def check(loopml: Figures, peer: Figures) -> list[str]:
    """Every measured request got a 200, and each server answers what its model predicts."""
    errors: list[str] = []
    for figures in (loopml, peer):
        package = figures["package"]
        for workload in ("throughput_c8", "p99_c1"):
            found = figures[workload]
            if found["errors"]:
                errors.append(
                    f"{workload}: {package} answered {found['errors']} of {found['requests']} "
                    f"requests with something other than 200 ({found['statuses']}); "
                    f"first: {found['first_error']}"
                )
        probe = figures["probe"]
        if not probe["ok"]:
            errors.append(
                f"probe: {package}'s server matched its own model on {probe['matching']} of "
                f"{probe['rows']} rows; expected all"
            )
    extra = loopml.get("rf100")
    if isinstance(extra, dict) and "error" in extra:
        errors.append(f"rf100 (loopml only): {extra['error']}")
    return errors


SERVING = Suite(
    name="serving",
    summary="GradientBoosting on one worker: throughput at c8, p99 at c1, cold start",
    peer="mlflow",
    loopml_side=Side("bench.sides.serving_loopml"),
    peer_side=Side(
        "bench.sides.serving_mlflow",
        env=PEERS,
        # No network: a local SQLite tracking store, no telemetry.
        extra_env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
    ),
    config={
        "rows": 10_000,
        "features": 20,
        "seed": 20240601,
        "request_rows": 256,
        "cold_starts": 3,
        "warmup_seconds": 2,
        "latency_seconds": 10,
        "throughput_seconds": 20,
        "extra_seconds": 5,
        "max_requests": 200_000,
        "start_timeout_seconds": 120,
    },
    goals={"throughput_c8": 8.0, "p99_c1": 5.0, "cold_start": 3.0},
    scalable=("warmup_seconds", "latency_seconds", "throughput_seconds", "extra_seconds"),
    check=check,
)
