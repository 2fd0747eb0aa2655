"""Evaluation: the candidate and the champion score the same labelled window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.loop._policy import Evaluation, higher_is_better
from loopml.loop._window import Labelled, score
from loopml.registry import ModelVersion

__all__ = ["EvaluationResult", "compare"]


@dataclass(frozen=True)
class EvaluationResult:
    """Both scores on one window, the candidate's gain, and whether it is enough."""

    metric: str
    rows: int
    candidate: float
    champion: float
    gain: float
    min_gain: float
    passed: bool
    first_ts_ms: int
    last_ts_ms: int

    @property
    def reason(self) -> str:
        verdict = "beats" if self.passed else "does not beat"
        return (
            f"candidate {verdict} champion on {self.metric} over {self.rows} labelled rows: "
            f"{self.candidate:.4f} vs {self.champion:.4f} (gain {self.gain:+.4f}, "
            f"needed {self.min_gain:+.4f})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "rows": self.rows,
            "candidate": self.candidate,
            "champion": self.champion,
            "gain": self.gain,
            "min_gain": self.min_gain,
            "passed": self.passed,
            "window_first_ts_ms": self.first_ts_ms,
            "window_last_ts_ms": self.last_ts_ms,
        }


def compare(
    policy: Evaluation,
    data: Labelled,
    candidate: ModelVersion,
    champion: ModelVersion,
    load: Callable[[str], Any],
) -> EvaluationResult:
    """Score both on the newest ``window_rows`` of ``data``; the gain is positive when
    the candidate is better (for losses, when its value is lower)."""
    window = data.newest(policy.window_rows)
    metric = policy.metric
    cand = score(load(candidate.ref), candidate, window, metric)
    champ = score(load(champion.ref), champion, window, metric)
    gain = cand - champ if higher_is_better(metric) else champ - cand
    passed = gain == gain and gain >= policy.min_gain  # NaN (one class only) never passes
    return EvaluationResult(
        metric=metric,
        rows=len(window),
        candidate=cand,
        champion=champ,
        gain=gain,
        min_gain=policy.min_gain,
        passed=passed,
        first_ts_ms=min(window.ts_ms),
        last_ts_ms=max(window.ts_ms),
    )
