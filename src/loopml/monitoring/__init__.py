"""Monitoring: data and prediction drift, late-label performance, operations, reports, alerts."""

from loopml.monitoring._drift import compute_drift, detect_drift
from loopml.monitoring._drift_model import DriftResult, DriftThresholds, FeatureDrift, FeatureRule
from loopml.monitoring._reference import reference_profile
from loopml.monitoring._sketch import DriftSketch

__all__ = [
    "DriftResult",
    "DriftSketch",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureRule",
    "compute_drift",
    "detect_drift",
    "reference_profile",
]
