"""Prediction drift: mergeable counts of what a model version answered, and their drift
against a reference window of the same version.

A classifier's answers are counted per predicted class; a binary classifier's
positive-class probability also in ten fixed bins of width 0.1; a regressor's predictions in
fixed signed-logarithmic bins (20 per decade). Fixed bins make counts from any window,
pass or process add up. Drift compares the score bins when there are any (probability or
value), the class counts otherwise, with the population stability index (PSI) and the
Jensen-Shannon distance (base 2, 0..1).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PREDICTION_STATISTICS", "PredictionCounts", "canonical", "prediction_drift"]

PREDICTION_STATISTICS = ("psi", "jensen_shannon")
_PROBA_BINS = 10
_LOG_BINS_PER_DECADE = 20
_GROUPS = 10  # regression bins are grouped into at most this many for the statistics
_EPS = 1e-4


def canonical(value: Any) -> str:
    """A label or prediction as text, so that ``1``, ``1.0`` and ``"1"`` compare equal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class PredictionCounts:
    """Counts of one version's answers in one window (fallback answers excluded)."""

    classes: dict[str, int] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.classes.values()) or sum(self.scores.values())

    def add_classes(self, labels: list[str | None]) -> None:
        for label in labels:
            if label is not None:
                self.classes[label] = self.classes.get(label, 0) + 1

    def add_probabilities(self, values: np.ndarray[Any, Any]) -> None:
        values = values[np.isfinite(values)]
        bins = np.clip((values * _PROBA_BINS).astype(np.int64), 0, _PROBA_BINS - 1)
        self._add_bins(bins)

    def add_values(self, values: np.ndarray[Any, Any]) -> None:
        values = values[np.isfinite(values)]
        magnitude = np.floor(np.log10(1.0 + np.abs(values)) * _LOG_BINS_PER_DECADE)
        bins = np.where(values > 0, magnitude + 1, np.where(values < 0, -magnitude, 0))
        self._add_bins(bins.astype(np.int64))

    def _add_bins(self, bins: np.ndarray[Any, Any]) -> None:
        found, counts = np.unique(bins, return_counts=True)
        for bin_, n in zip(found.tolist(), counts.tolist(), strict=True):
            self.scores[bin_] = self.scores.get(bin_, 0) + n

    def merge(self, other: PredictionCounts) -> PredictionCounts:
        merged = PredictionCounts(dict(self.classes), dict(self.scores))
        for key, n in other.classes.items():
            merged.classes[key] = merged.classes.get(key, 0) + n
        for bin_, n in other.scores.items():
            merged.scores[bin_] = merged.scores.get(bin_, 0) + n
        return merged

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": dict(sorted(self.classes.items())),
            "scores": {str(k): v for k, v in sorted(self.scores.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionCounts:
        return cls(
            classes={str(k): int(v) for k, v in data.get("classes", {}).items()},
            scores={int(k): int(v) for k, v in data.get("scores", {}).items()},
        )


def _grouped(reference: dict[int, int], current: dict[int, int]) -> tuple[list[int], list[int]]:
    """Both score histograms over at most ``_GROUPS`` groups of adjacent bins, each holding
    about an equal share of the reference (bins the reference lacks join the nearest group)."""
    keys = sorted(set(reference) | set(current))
    total = sum(reference.values())
    groups: list[int] = []
    group, mass = 0, 0
    for key in keys:
        groups.append(group)
        mass += reference.get(key, 0)
        if mass >= total * (group + 1) / _GROUPS:
            group += 1
    size = max(groups) + 1 if groups else 0
    ref, cur = [0] * size, [0] * size
    for key, g in zip(keys, groups, strict=True):
        ref[g] += reference.get(key, 0)
        cur[g] += current.get(key, 0)
    return ref, cur


def _statistics(reference: list[int], current: list[int]) -> dict[str, float]:
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    p = np.maximum(ref / ref.sum(), _EPS)
    q = np.maximum(cur / cur.sum(), _EPS)
    psi = float(np.sum((q - p) * np.log(q / p)))
    p, q = ref / ref.sum(), cur / cur.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray[Any, Any]) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    js = math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))
    return {"psi": psi, "jensen_shannon": js}


def prediction_drift(
    reference: PredictionCounts, current: PredictionCounts
) -> dict[str, float] | None:
    """PSI and Jensen-Shannon distance of ``current`` against ``reference``; None when
    either has no answers."""
    if not reference.total or not current.total:
        return None
    if reference.scores and current.scores:
        ref, cur = _grouped(reference.scores, current.scores)
    else:
        keys = sorted(set(reference.classes) | set(current.classes))
        ref = [reference.classes.get(k, 0) for k in keys]
        cur = [current.classes.get(k, 0) for k in keys]
    if not sum(ref) or not sum(cur):
        return None
    return _statistics(ref, cur)
