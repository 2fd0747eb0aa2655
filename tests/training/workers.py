"""Functions spawned processes run; kept free of pandas and sklearn so they start fast."""

from __future__ import annotations

from typing import Any

from loopml.core import Settings


def quadratic(trial: Any, run: Any) -> float:
    """Maximised at x = 1; logs a metric of its own to the trial's run."""
    x = trial.suggest_float("x", -3.0, 3.0)
    run.log_metric("x_squared", x * x)
    return float(-((x - 1.0) ** 2))


def tune_in_process(settings: Settings, study_name: str, n_trials: int) -> None:
    """Join the study ``study_name`` and add ``n_trials`` trials to it."""
    from loopml.training import tune

    tune(quadratic, n_trials=n_trials, study_name=study_name, settings=settings)
