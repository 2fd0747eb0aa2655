"""The yardsticks, scored offline on the same replayed flights as the loop.

- **static**: the first model, never retrained (what a deploy-and-forget team has);
- **oracle**: retrained on the first day of every month on every flight before it, with
  every label known at once (no label delay, no drift detection, no gates): the most a
  monthly schedule could get, at one retrain a month.

The loop's own figures come from what the server actually answered during the replay.
Models are judged by ROC AUC (ranking delayed flights first) and log loss (calibrated
probabilities), never accuracy: with 14 to 30 % of flights delayed, "never delayed"
already scores about 0.78.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.demo._flights import FEATURES, TARGET
from loopml.demo._model import delay_classifier

__all__ = ["METRIC", "Oracle", "monthly_metrics", "oracle_scores", "overall_metrics", "scores_of"]

METRIC = "roc_auc"
Floats = npt.NDArray[np.float64]


def scores_of(model: Any, flights: pd.DataFrame) -> Floats:
    """The probability of a delay that ``model`` gives each flight."""
    classes = [int(c) for c in model.classes_]
    proba = np.asarray(model.predict_proba(flights[list(FEATURES)]))
    return proba[:, classes.index(1)].astype(np.float64)


@dataclass(frozen=True)
class Oracle:
    scores: Floats
    retrains: int


def oracle_scores(
    history: pd.DataFrame,
    replay: pd.DataFrame,
    *,
    max_iter: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Oracle:
    """Scores of ``replay`` by a model refit each month on all flights before that month."""
    scores = np.full(len(replay), np.nan)
    months = replay["month"].to_numpy()
    everything = pd.concat([history, replay], ignore_index=True)
    all_months = everything["month"].to_numpy()
    retrains = 0
    for month in sorted(set(months.tolist())):
        past = everything[all_months < month]
        model = delay_classifier(seed=seed, max_iter=max_iter)
        model.fit(past[list(FEATURES)], past[TARGET])
        retrains += 1
        rows = months == month
        scores[rows] = scores_of(model, replay[rows])
        if progress is not None:
            progress(1)
    return Oracle(scores, retrains)


def _metrics(labels: npt.NDArray[np.int64], scores: Floats) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    if len(set(labels.tolist())) < 2:
        return {"roc_auc": float("nan"), "log_loss": float("nan"), "rows": float(len(labels))}
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "log_loss": float(log_loss(labels, clipped, labels=[0, 1])),
        "rows": float(len(labels)),
    }


def overall_metrics(
    replay: pd.DataFrame, scores: Mapping[str, Floats]
) -> dict[str, dict[str, float]]:
    """``{"static": {"roc_auc", "log_loss", "rows"}, ...}`` over the whole replay."""
    labels = replay[TARGET].to_numpy()
    return {name: _metrics(labels, values) for name, values in scores.items()}


def monthly_metrics(replay: pd.DataFrame, scores: Mapping[str, Floats]) -> pd.DataFrame:
    """One row per (month, model): ``roc_auc``, ``log_loss``, ``rows``, ``delay_rate``."""
    labels = replay[TARGET].to_numpy()
    months = replay["month"].to_numpy()
    rows: list[dict[str, Any]] = []
    for month in sorted(set(months.tolist())):
        mask = months == month
        for name, values in scores.items():
            rows.append(
                {
                    "month": int(month),
                    "model": name,
                    "delay_rate": float(labels[mask].mean()),
                    **_metrics(labels[mask], values[mask]),
                }
            )
    return pd.DataFrame(rows)
