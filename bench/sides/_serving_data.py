"""The serving suite's data and models, the same on every side for the same seed.

Imports numpy, pandas and scikit-learn, which both environments hold at the same pinned
scikit-learn version (``bench/requirements-peers.txt`` pins the project's).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FEATURE_PREFIX", "TARGET", "dataset", "estimator", "request_rows"]

FEATURE_PREFIX = "f"
TARGET = "label"


def dataset(rows: int, features: int, seed: int) -> Any:
    """``make_classification`` as a DataFrame: columns ``f0..f<n-1>`` and ``label``."""
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=features, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"{FEATURE_PREFIX}{i}" for i in range(features)])
    frame[TARGET] = y
    return frame


def estimator(kind: str, seed: int) -> Any:
    """The model measured: ``gbc`` (GradientBoostingClassifier, default settings) or
    ``rf100`` (RandomForestClassifier of 100 trees), seeded."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    if kind == "gbc":
        return GradientBoostingClassifier(random_state=seed)
    if kind == "rf100":
        return RandomForestClassifier(n_estimators=100, random_state=seed)
    raise ValueError(f"unknown model kind {kind!r}; expected 'gbc' or 'rf100'")


def request_rows(frame: Any, count: int) -> list[dict[str, float]]:
    """The first ``count`` rows' features as plain dicts: the single-record requests."""
    features = frame.drop(columns=[TARGET])
    return [
        {name: float(value) for name, value in row.items()}
        for row in features.head(count).to_dict(orient="records")
    ]
