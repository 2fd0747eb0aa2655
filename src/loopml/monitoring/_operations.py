"""Operations per window and model version: mergeable row, fallback and error counts and a
latency histogram on fixed logarithmic buckets, from which p50/p95/p99 are read.

Buckets are fixed (50 per decade of milliseconds), so two windows' counts add bin by bin
and a quantile read from them is within about 2.5 % of the exact one, however many
passes or processes built them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LATENCY_QUANTILES", "OpsCounts"]

LATENCY_QUANTILES = (0.5, 0.95, 0.99)
_PER_DECADE = 50
_FLOOR_MS = 1e-3  # latencies below a microsecond share the lowest bucket


def _bucket_value(bucket: int) -> float:
    """The geometric middle of a bucket, in milliseconds."""
    return float(10 ** ((bucket - 0.5) / _PER_DECADE))


@dataclass
class OpsCounts:
    """Rows, fallbacks and errors of one model version in one window, and its latencies.

    ``errors`` are rows whose model call failed: in the prediction log those are the rows a
    fallback answered (a failure without a fallback is a 503 and is not logged) and rows
    logged without a prediction.
    """

    rows: int = 0
    fallbacks: int = 0
    errors: int = 0
    shadow_rows: int = 0
    latency: dict[int, int] = field(default_factory=dict)  # bucket -> count

    def add(
        self,
        latency_ms: np.ndarray[Any, Any],
        fallback: np.ndarray[Any, Any],
        error: np.ndarray[Any, Any],
        shadow: np.ndarray[Any, Any],
    ) -> None:
        """Count a batch of rows (equal-length arrays)."""
        self.rows += int(latency_ms.shape[0])
        self.fallbacks += int(np.count_nonzero(fallback))
        self.errors += int(np.count_nonzero(error))
        self.shadow_rows += int(np.count_nonzero(shadow))
        values = np.asarray(latency_ms, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            return
        buckets = np.ceil(np.log10(np.maximum(values, _FLOOR_MS)) * _PER_DECADE).astype(np.int64)
        found, counts = np.unique(buckets, return_counts=True)
        for bucket, count in zip(found.tolist(), counts.tolist(), strict=True):
            self.latency[bucket] = self.latency.get(bucket, 0) + count

    def merge(self, other: OpsCounts) -> OpsCounts:
        """The counts of both (a new object)."""
        latency = dict(self.latency)
        for bucket, count in other.latency.items():
            latency[bucket] = latency.get(bucket, 0) + count
        return OpsCounts(
            rows=self.rows + other.rows,
            fallbacks=self.fallbacks + other.fallbacks,
            errors=self.errors + other.errors,
            shadow_rows=self.shadow_rows + other.shadow_rows,
            latency=latency,
        )

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of latency in milliseconds (None without rows)."""
        total = sum(self.latency.values())
        if not total:
            return None
        rank = max(1, math.ceil(q * total))  # the nearest-rank definition
        seen = 0
        for bucket in sorted(self.latency):
            seen += self.latency[bucket]
            if seen >= rank:
                return _bucket_value(bucket)
        return _bucket_value(max(self.latency))  # pragma: no cover - rank <= total

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.rows if self.rows else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fallbacks": self.fallbacks,
            "errors": self.errors,
            "shadow_rows": self.shadow_rows,
            "latency": {str(k): v for k, v in sorted(self.latency.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpsCounts:
        return cls(
            rows=int(data["rows"]),
            fallbacks=int(data["fallbacks"]),
            errors=int(data["errors"]),
            shadow_rows=int(data.get("shadow_rows", 0)),
            latency={int(k): int(v) for k, v in data["latency"].items()},
        )
