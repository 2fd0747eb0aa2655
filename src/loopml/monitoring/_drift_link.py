"""The monitor's use of the drift engine: a version's reference profile, a sketch per
window on its bins, and the drift computed from it."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from loopml.core import LoopmlError, Settings
from loopml.data import DatasetProfile
from loopml.monitoring._drift import compute_drift
from loopml.monitoring._drift_model import DriftResult
from loopml.monitoring._reference import reference_profile
from loopml.monitoring._sketch import DriftSketch

__all__ = [
    "compute",
    "empty_sketch",
    "reference_or_none",
    "result_from_dict",
    "sketch_from_dict",
    "update_sketch",
]

_log = logging.getLogger("loopml.monitoring")


def reference_or_none(settings: Settings, ref: str) -> DatasetProfile | None:
    """The version's training-data profile, or None when the registry stored none."""
    try:
        return reference_profile(settings, ref)
    except LoopmlError as exc:
        _log.info("monitoring: %s has no drift reference: %s", ref, exc)
        return None


def empty_sketch(profile: DatasetProfile, features: tuple[str, ...]) -> DriftSketch:
    """An empty sketch of the model's input ``features`` that the profile can compare
    (the target and datetime columns are left out)."""
    return DriftSketch.empty(profile, columns=features)


def update_sketch(sketch: DriftSketch, table: pa.Table) -> DriftSketch:
    return sketch.update(table)


def sketch_from_dict(data: dict[str, Any]) -> DriftSketch:
    return DriftSketch.from_dict(data)


def compute(profile: DatasetProfile, sketch: DriftSketch) -> DriftResult:
    return compute_drift(profile, sketch)


def result_from_dict(data: dict[str, Any]) -> DriftResult:
    return DriftResult.from_dict(data)
