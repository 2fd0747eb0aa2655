"""The stored state of one window: per model version mergeable counts (operations,
predictions, a data-drift sketch on the version's reference bins), and its performance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loopml.monitoring import _drift_link
from loopml.monitoring._operations import OpsCounts
from loopml.monitoring._predictions import PredictionCounts

__all__ = ["VersionSketch", "WindowState"]


@dataclass
class VersionSketch:
    """One model version's counts in one window; ``drift`` is a ``DriftSketch`` (None when
    the version has no reference profile); ``invalid`` counts, per feature, the values
    sent that could not be converted to the feature's kind (counted missing in ``drift``)."""

    ops: OpsCounts = field(default_factory=OpsCounts)
    predictions: PredictionCounts = field(default_factory=PredictionCounts)
    drift: Any = None
    invalid: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": self.ops.to_dict(),
            "predictions": self.predictions.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "invalid": dict(sorted(self.invalid.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionSketch:
        drift = data.get("drift")
        return cls(
            ops=OpsCounts.from_dict(data["ops"]),
            predictions=PredictionCounts.from_dict(data["predictions"]),
            drift=None if drift is None else _drift_link.sketch_from_dict(drift),
            invalid={str(k): int(v) for k, v in data.get("invalid", {}).items()},
        )


@dataclass
class WindowState:
    """A window as stored: for count windows ``start_ms``/``end_ms`` are the first and last
    prediction times seen in it; for time windows its bounds."""

    index: int
    start_ms: int
    end_ms: int
    rows: int = 0
    versions: dict[str, VersionSketch] = field(default_factory=dict)
    labels_digest: str | None = None
    performance: dict[str, dict[str, Any]] = field(default_factory=dict)
    new: bool = True  # not stored yet

    def sketch_json(self) -> str:
        return json.dumps(
            {ref: v.to_dict() for ref, v in sorted(self.versions.items())},
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_row(cls, row: Any) -> WindowState:
        versions = {ref: VersionSketch.from_dict(v) for ref, v in json.loads(row.sketch).items()}
        return cls(
            index=int(row.window_index),
            start_ms=int(row.start_ms),
            end_ms=int(row.end_ms),
            rows=int(row.rows),
            versions=versions,
            labels_digest=row.labels_digest,
            performance=json.loads(row.performance),
            new=False,
        )
