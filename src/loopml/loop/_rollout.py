"""Canary health: the canary version against the champion serving beside it.

Operations (error rate, p95 latency) are measured on the current step's traffic;
quality on every labelled answer since the canary began, each version scored on the
requests it answered itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.loop._policy import Rollout, higher_is_better
from loopml.loop._window import Labelled, score
from loopml.registry import ModelVersion

__all__ = ["CanaryHealth", "judge_canary", "version_samples"]


@dataclass(frozen=True)
class CanaryHealth:
    """``failures`` empty means healthy so far; ``samples`` is the evidence."""

    failures: list[str]
    samples: list[dict[str, Any]] = field(default_factory=list)
    quality: dict[str, Any] | None = None


def version_samples(deployment: str, version: str, ops: dict[str, float]) -> list[dict[str, Any]]:
    """``ops_stats`` in the flat sample form monitoring uses (``loopml_latency_ms`` ...)."""
    labels = {"deployment": deployment, "model_version": version}
    out = [{"name": "loopml_window_rows", "labels": labels, "value": ops.get("rows", 0.0)}]
    if ops.get("rows"):
        out.append({"name": "loopml_error_rate", "labels": labels, "value": ops["error_rate"]})
        for quantile, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            out.append(
                {
                    "name": "loopml_latency_ms",
                    "labels": {**labels, "quantile": quantile},
                    "value": ops[key],
                }
            )
    return out


def _quality(
    rollout: Rollout,
    metric: str,
    labelled: Labelled,
    candidate: ModelVersion,
    champion: ModelVersion,
    load: Callable[[str], Any],
) -> tuple[str | None, dict[str, Any]]:
    mine, theirs = labelled.served_by(candidate.ref), labelled.served_by(champion.ref)
    info: dict[str, Any] = {
        "metric": metric,
        "candidate_rows": len(mine),
        "champion_rows": len(theirs),
    }
    if len(mine) < rollout.min_labelled or len(theirs) < rollout.min_labelled:
        return None, info
    cand = score(load(candidate.ref), candidate, mine, metric)
    champ = score(load(champion.ref), champion, theirs, metric)
    worse_by = champ - cand if higher_is_better(metric) else cand - champ
    info.update(candidate=cand, champion=champ, worse_by=worse_by)
    if worse_by > rollout.max_quality_drop:
        return (
            f"canary {metric} {cand:.4f} trails the champion's {champ:.4f} by {worse_by:.4f} "
            f"(allowed {rollout.max_quality_drop:g}) on labelled traffic",
            info,
        )
    return None, info


def judge_canary(
    rollout: Rollout,
    metric: str,
    deployment: str,
    ops: dict[str, dict[str, float]],
    labelled: Labelled,
    candidate: ModelVersion,
    champion: ModelVersion,
    load: Callable[[str], Any],
) -> CanaryHealth:
    """What is wrong with the canary now (nothing, while it has under ``min_rows``)."""
    mine, theirs = ops[candidate.ref], ops[champion.ref]
    samples = version_samples(deployment, candidate.ref, mine) + version_samples(
        deployment, champion.ref, theirs
    )
    if mine.get("rows", 0) < rollout.min_rows:
        return CanaryHealth([], samples)
    failures = []
    if mine["error_rate"] > rollout.max_error_rate:
        failures.append(
            f"canary error rate {mine['error_rate']:.1%} is above {rollout.max_error_rate:.1%}"
        )
    if rollout.max_latency_p95_ms is not None and mine["p95_ms"] > rollout.max_latency_p95_ms:
        failures.append(
            f"canary p95 latency {mine['p95_ms']:.1f} ms is above {rollout.max_latency_p95_ms:g} ms"
        )
    ratio = rollout.max_latency_ratio
    if ratio is not None and theirs.get("rows", 0) >= rollout.min_rows:
        # a floor of 1 ms keeps sub-millisecond noise from failing a fast model
        allowed = max(theirs["p95_ms"], 1.0) * ratio
        if mine["p95_ms"] > allowed:
            failures.append(
                f"canary p95 latency {mine['p95_ms']:.1f} ms is over {ratio:g}x the champion's "
                f"{theirs['p95_ms']:.1f} ms"
            )
    problem, quality = _quality(rollout, metric, labelled, candidate, champion, load)
    if problem:
        failures.append(problem)
    for version, info in (
        (candidate.ref, quality.get("candidate")),
        (champion.ref, quality.get("champion")),
    ):
        if info is not None:
            samples.append(
                {
                    "name": "loopml_model_performance",
                    "labels": {
                        "deployment": deployment,
                        "model_version": version,
                        "metric": metric,
                    },
                    "value": info,
                }
            )
    return CanaryHealth(failures, samples, quality)
