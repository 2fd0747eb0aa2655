"""What every side script shares: reading its config, timing, seeded data, reporting.

Standard library only: the same module runs under the project interpreter (loopml side) and
under the peers' interpreter (MLflow side), so it must import nothing else.

A side script is started as ``python -m bench.sides.<name> WORKDIR CONFIG_JSON`` and prints
its figures as one JSON object on its last stdout line (see :func:`emit`).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SideArgs", "emit", "median_seconds", "parse_args", "run_rows", "seconds"]


@dataclass(frozen=True, slots=True)
class SideArgs:
    """Arguments handed to a side script by the harness."""

    workdir: Path
    config: dict[str, Any]


def parse_args(argv: list[str] | None = None) -> SideArgs:
    """Read ``WORKDIR CONFIG_JSON`` from the command line; exit 2 with a message if malformed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit(f"usage: python -m bench.sides.<side> WORKDIR CONFIG_JSON; got {args!r}")
    workdir = Path(args[0])
    if not workdir.is_dir():
        sys.exit(f"WORKDIR must be an existing folder; got {args[0]!r}")
    try:
        config = json.loads(args[1])
    except json.JSONDecodeError as exc:
        sys.exit(f"CONFIG_JSON must be a JSON object; got {args[1]!r} ({exc})")
    if not isinstance(config, dict):
        sys.exit(f"CONFIG_JSON must be a JSON object; got {type(config).__name__}")
    return SideArgs(workdir=workdir, config=config)


def seconds(action: Callable[[], object]) -> float:
    """Run ``action`` once and return its wall-clock duration in seconds."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_seconds(action: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Run ``action`` ``repeats`` times; return the median and every duration, in seconds."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    durations = [seconds(action) for _ in range(repeats)]
    return statistics.median(durations), durations


def run_rows(
    *, seed: int, runs: int, params: int, metrics: int
) -> list[tuple[dict[str, str], dict[str, float]]]:
    """The params and metrics of every run, identical on both sides for the same seed.

    Params are strings (MLflow stores every param as a string; loopml gets the same values).
    Metrics ``m0..`` are uniform floats in [0, 1).
    """
    rng = random.Random(seed)
    return [
        (
            {f"p{j}": f"value-{i}-{j}" for j in range(params)},
            {f"m{j}": rng.random() for j in range(metrics)},
        )
        for i in range(runs)
    ]


def emit(figures: dict[str, Any]) -> None:
    """Print ``figures`` as the last stdout line, where the harness looks for it."""
    sys.stdout.flush()
    print(json.dumps(figures), flush=True)
