"""Plain, immutable records that every layer passes around.

They carry no behaviour and no database handles, so any layer may build or read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArtifactRef", "DatasetVersion", "Experiment", "MetricPoint", "Run", "RunStatus"]


class RunStatus(enum.StrEnum):
    """Lifecycle of a tracking run."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of a metric at a step and a time (milliseconds since the epoch)."""

    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A file logged to a run: its path inside the run and the digest of its bytes."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Run:
    """A tracking run as stored: metrics holds the latest value of each metric."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_ms: int
    end_ms: int | None
    parent_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, or None while the run is open."""
        return None if self.end_ms is None else (self.end_ms - self.start_ms) / 1000.0


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a named dataset.

    ``kind`` is ``"table"`` (ingested into one canonical Parquet snapshot, with schema,
    profile and validation) or ``"files"`` (a file or folder versioned as-is, its
    snapshot a manifest of files). ``digest`` names the content: the same data always
    gets the same digest, whatever the source format or chunking.
    """

    id: str
    name: str
    version: int
    digest: str
    kind: str
    snapshot: str
    row_count: int | None
    file_count: int
    bytes: int
    schema: list[dict[str, Any]] | None
    source: dict[str, Any]
    lineage: dict[str, Any]
    forced: bool
    created_ms: int

    @property
    def ref(self) -> str:
        """``NAME@VERSION``, the way the CLI names it."""
        return f"{self.name}@{self.version}"
