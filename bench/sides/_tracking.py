"""The tracking workloads, timed the same way for every side.

Each side script wraps its library in a :class:`TrackingSide`; :func:`measure` does the timing,
so loopml and its peer run the very same loops and clocks. Standard library only.
"""

from __future__ import annotations

import itertools
import platform
from collections.abc import Sequence
from typing import Any, Protocol

from bench.sides._common import median_seconds, run_rows, seconds

__all__ = ["TrackingSide", "measure"]

Row = tuple[dict[str, str], dict[str, float]]


class TrackingSide(Protocol):
    """One tracking library, driven through the calls a user would choose."""

    package: str
    version: str

    def warm_up(self) -> None:
        """Create the store (migrations included) and the experiments; not timed."""

    def log_metric_run(self, calls: int) -> None:
        """Start a run, log ``loss`` = float(i) at step i one call at a time, end the run."""

    def stored_loss(self) -> list[float]:
        """Every stored ``loss`` value of the :meth:`log_metric_run` run, by step; not timed."""

    def create_runs(self, rows: Sequence[Row]) -> None:
        """Start, fill (params, metrics) and end one run per row, in one experiment."""

    def search(self, threshold: float, max_results: int) -> Sequence[object]:
        """Runs of that experiment with ``metrics.m0 > threshold``, by ``metrics.m1 DESC``."""

    def m1_values(self, found: Sequence[object]) -> list[float]:
        """The ``m1`` metric of each run :meth:`search` returned, in its order; not timed."""


def measure(side: TrackingSide, config: dict[str, Any]) -> dict[str, Any]:
    """Run the three workloads on ``side`` and return its figures (see bench/README.md)."""
    calls = int(config["log_metric_calls"])
    rows = run_rows(
        seed=int(config["seed"]),
        runs=int(config["runs"]),
        params=int(config["params_per_run"]),
        metrics=int(config["metrics_per_run"]),
    )
    threshold = float(config["search_threshold"])
    max_results = int(config["search_max_results"])
    repeats = int(config["search_repeats"])

    side.warm_up()
    log_s = seconds(lambda: side.log_metric_run(calls))
    stored = side.stored_loss()
    runs_s = seconds(lambda: side.create_runs(rows))
    found: list[Sequence[object]] = []
    search_s, search_all = median_seconds(
        lambda: found.append(side.search(threshold, max_results)), repeats
    )
    m1 = side.m1_values(found[-1])
    return {
        "package": side.package,
        "version": side.version,
        "python": platform.python_version(),
        "log_metric": {
            "calls": calls,
            "seconds": round(log_s, 6),
            "calls_per_s": round(calls / log_s, 1),
            "stored_points": len(stored),
            "stored_ok": stored == [float(i) for i in range(calls)],
        },
        "create_runs": {
            "runs": len(rows),
            "seconds": round(runs_s, 6),
            "runs_per_s": round(len(rows) / runs_s, 1),
        },
        "search_runs": {
            "seconds": round(search_s, 6),
            "repeats": repeats,
            "all_seconds": [round(s, 6) for s in search_all],
            "returned": len(m1),
            "expected": min(max_results, sum(1 for _, m in rows if m["m0"] > threshold)),
            "ordered": all(a >= b for a, b in itertools.pairwise(m1)),
        },
    }
