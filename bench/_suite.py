"""What a suite is, and how one is run: loopml and its peer, side by side, then the ratios.

A suite names two side scripts that do the same workloads, the environment each runs in,
its workload config and its goals. :func:`run_suite` runs loopml's side then the peer's, each
on a fresh temporary folder, and returns one JSON-ready result::

    {"loopml": {...}, "peer": {...}, "ratios": {...}, "goals": {...},
     "meets_goals": bool, "errors": [...]}

A ratio is peer seconds / loopml seconds: how many times faster loopml is.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._env import BENCH_DIR, PeerEnv
from bench._errors import BenchError
from bench._log import log
from bench._side import run_side

__all__ = ["Figures", "Side", "Suite", "run_suite"]

Figures = dict[str, Any]
REPO_DIR = BENCH_DIR.parent


@dataclass(frozen=True, slots=True)
class Side:
    """One side script and where it runs.

    ``env=None`` means the interpreter running the bench, with the repo's ``src`` on the path,
    so loopml is measured from the working tree.
    """

    module: str
    env: PeerEnv | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def interpreter(self) -> tuple[Path, list[Path]]:
        """The interpreter and ``PYTHONPATH`` entries; builds a peer env if needed."""
        if self.env is None:
            return Path(sys.executable), [REPO_DIR / "src", REPO_DIR]
        return self.env.ensure(), [REPO_DIR]


@dataclass(frozen=True, slots=True)
class Suite:
    """A benchmark of loopml against one peer on a set of workloads.

    ``goals`` maps a workload (a key of both sides' figures holding ``seconds``) to the ratio
    it should reach; ``max_seconds`` maps a workload to the most seconds loopml may take on it
    (an absolute goal; its ratio is reported too). ``scalable`` names the config counts
    ``--scale`` multiplies. ``check`` compares the two sides' figures and returns errors (e.g.
    different result counts). ``measures`` maps a workload to the figure its ratio compares
    when that is not ``seconds`` (e.g. ``peak_mb``: peer's peak memory / loopml's).
    """

    name: str
    summary: str
    peer: str
    loopml_side: Side
    peer_side: Side
    config: Mapping[str, Any]
    goals: Mapping[str, float]
    scalable: tuple[str, ...] = ()
    check: Callable[[Figures, Figures], list[str]] = lambda _loopml, _peer: []
    max_seconds: Mapping[str, float] = field(default_factory=dict)
    measures: Mapping[str, str] = field(default_factory=dict)

    @property
    def workloads(self) -> list[str]:
        """Every workload with a goal: ratio goals first, then absolute ones."""
        return [*self.goals, *(w for w in self.max_seconds if w not in self.goals)]

    def scaled_config(self, scale: float) -> dict[str, Any]:
        """The workload config with every ``scalable`` count times ``scale`` (at least 1)."""
        if scale <= 0:
            raise ValueError(f"scale must be greater than 0; got {scale}")
        config = dict(self.config)
        for key in self.scalable:
            config[key] = max(1, round(config[key] * scale))
        return config


def ratios(suite: Suite, loopml: Figures, peer: Figures) -> dict[str, float]:
    """Peer / loopml of each workload's measure (seconds unless ``suite.measures`` names
    another), rounded to 1 decimal."""
    found = {}
    for workload in suite.workloads:
        key = suite.measures.get(workload, "seconds")
        found[workload] = round(peer[workload][key] / max(loopml[workload][key], 1e-9), 1)
    return found


def meets_goals(suite: Suite, loopml: Figures, got: Mapping[str, float]) -> bool:
    """Every ratio reaches its goal and loopml is within every ``max_seconds``."""
    return (
        bool(got)
        and all(got[w] >= goal for w, goal in suite.goals.items())
        and all(loopml[w]["seconds"] <= limit for w, limit in suite.max_seconds.items())
    )


def _run_one(
    suite: Suite, label: str, side: Side, config: Mapping[str, Any], timeout_s: float
) -> Figures:
    python, pythonpath = side.interpreter()
    with tempfile.TemporaryDirectory(prefix=f"loopml-bench-{suite.name}-{label}-") as tmp:
        log(f"{suite.name}: {label} side ({side.module}) in {tmp}")
        started = time.perf_counter()
        figures = run_side(
            python=python,
            module=side.module,
            workdir=Path(tmp),
            config=config,
            pythonpath=pythonpath,
            extra_env=side.extra_env,
            timeout_s=timeout_s,
        )
        log(f"{suite.name}: {label} side done in {time.perf_counter() - started:.1f} s")
    return figures


def run_suite(suite: Suite, *, scale: float = 1.0, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run both sides of ``suite``; failures are reported in ``errors``, not raised."""
    config = suite.scaled_config(scale)
    errors: list[str] = []
    figures: dict[str, Figures] = {}
    for label, side in (("loopml", suite.loopml_side), ("peer", suite.peer_side)):
        try:
            figures[label] = _run_one(suite, label, side, config, timeout_s)
        except BenchError as exc:
            log(f"{suite.name}: {label} side failed: {exc}")
            errors.append(f"{label} side ({suite.peer if label == 'peer' else 'loopml'}): {exc}")
            figures[label] = {"error": str(exc)}
    result: dict[str, Any] = {**figures, "ratios": {}, "goals": dict(suite.goals)}
    if suite.max_seconds:
        result["max_seconds"] = dict(suite.max_seconds)
    if not errors:
        try:
            result["ratios"] = ratios(suite, figures["loopml"], figures["peer"])
            errors.extend(suite.check(figures["loopml"], figures["peer"]))
        except (KeyError, TypeError) as exc:
            errors.append(f"figures lack an expected field: {exc!r}")
    got = result["ratios"]
    result["meets_goals"] = meets_goals(suite, figures["loopml"], got)
    result["errors"] = errors
    return result
