"""The pipelines workloads, timed the same way for every side.

Each side script wraps its tool in a :class:`PipelinesSide`; :func:`measure` warms it up on a
pipeline of its own, then times the first run of a chain of no-op steps on a fresh store and
a second run with nothing changed, which must reuse every step; a few times over, each on a
fresh store, reporting the medians. Standard library only: the
DVC side imports this under DVC's interpreter.
"""

from __future__ import annotations

import platform
import statistics
from typing import Any, Protocol

from bench.sides._common import seconds

__all__ = ["PipelinesSide", "measure"]


class PipelinesSide(Protocol):
    """One pipeline tool, driven the way a user runs a pipeline."""

    package: str
    version: str

    def warm_up(self) -> None:
        """Run a different, short pipeline once, in a store of its own; not timed."""

    def prepare(self, steps: int, repetition: int) -> None:
        """A fresh store holding the chain of ``steps`` no-op steps, each reading the one
        before, and nothing that chain could reuse; not timed."""

    def run(self) -> None:
        """Run the chain once (timed)."""

    def outcome(self) -> tuple[int, int]:
        """How many steps the last :meth:`run` executed and how many it reused; not timed."""


def _timed(side: PipelinesSide) -> tuple[float, int, int]:
    elapsed = seconds(side.run)
    return (elapsed, *side.outcome())


def _figures(
    steps: int, timed: list[tuple[float, int, int]], expected: tuple[int, int]
) -> dict[str, Any]:
    durations = [elapsed for elapsed, _, _ in timed]
    median = statistics.median(durations)
    # Counts shown: the first repetition that did not run as expected, else the first one.
    worst = next((t for t in timed if (t[1], t[2]) != expected), timed[0])
    return {
        "steps": steps,
        "seconds": round(median, 6),
        "steps_per_s": round(steps / median, 1),
        "repeats": len(timed),
        "all_seconds": [round(elapsed, 6) for elapsed in durations],
        "executed": worst[1],
        "reused": worst[2],
        "ok": all((t[1], t[2]) == expected for t in timed),
    }


def measure(side: PipelinesSide, config: dict[str, Any]) -> dict[str, Any]:
    """Warm up; then, ``repeats`` times on a fresh store each, time the chain's first run and
    its re-run with nothing changed; report the medians (see bench/README.md)."""
    steps, repeats = int(config["steps"]), int(config["repeats"])
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    side.warm_up()
    first: list[tuple[float, int, int]] = []
    rerun: list[tuple[float, int, int]] = []
    for repetition in range(repeats):
        side.prepare(steps, repetition)
        first.append(_timed(side))
        rerun.append(_timed(side))
    noop = _figures(steps, first, (steps, 0))
    cached = _figures(steps, rerun, (0, steps))
    return {
        "package": side.package,
        "version": side.version,
        "python": platform.python_version(),
        "noop_20_steps": noop,
        "cached_rerun_20_steps": cached,
        # Flat copies, the names the issue gives the figures: loopml.noop_20_steps_s, ...
        "noop_20_steps_s": noop["seconds"],
        "cached_rerun_20_steps_s": cached["seconds"],
    }
