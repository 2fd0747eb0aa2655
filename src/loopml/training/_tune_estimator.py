"""``tune_estimator``: tune an estimator's hyperparameters with ``fit`` as the objective."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loopml.core import Settings, ValidationError
from loopml.training._fit import check_cv, check_estimator, check_folds, train
from loopml.training._inputs import prepare
from loopml.training._tune import TuneResult, tune

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from loopml.data import SplitSpec
    from loopml.tracking import ActiveRun

__all__ = ["tune_estimator"]


def tune_estimator(
    estimator_factory: Callable[[dict[str, Any]], Any],
    space: Callable[[optuna.Trial], dict[str, Any]],
    data: str | pd.DataFrame,
    *,
    target: str,
    n_trials: int,
    study_name: str,
    metric: str = "cv_mean.roc_auc",
    direction: str = "maximize",
    features: Sequence[str] | None = None,
    split: str | SplitSpec | None = None,
    cv: int = 5,
    task: str = "auto",
    seed: int = 0,
    settings: Settings | None = None,
    experiment: str = "tuning",
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    timeout_s: float | None = None,
    n_jobs: int = 1,
    parent_run: ActiveRun | None = None,
) -> TuneResult:
    """Tune with :func:`~loopml.training.fit` as the objective, one trial per nested run.

    Each trial calls ``space(trial)`` for a dict of parameters (``trial.suggest_*``),
    builds ``estimator_factory(params)``, and fits it as :func:`fit` would (the data
    is loaded and split once, not per trial) into the trial's run, so every trial has
    its metrics and its model artifact. The trial's value is the metric ``metric``.
    For a ``cv_mean.<m>`` metric the running mean over folds is reported after each
    fold, so the pruner can stop a poor trial before its last folds.

    Example::

        tune_estimator(
            lambda p: LGBMClassifier(verbose=-1, **p),
            lambda t: {"num_leaves": t.suggest_int("num_leaves", 4, 64),
                       "learning_rate": t.suggest_float("learning_rate", 1e-3, 0.3, log=True)},
            "churn@3", target="churned", split="main", n_trials=50, study_name="churn-lgbm",
        )

    Raises:
        ValidationError: ``metric`` is not one that ``fit`` logs, or any error of
            :func:`fit` or :func:`tune`.
    """
    import optuna

    folds = check_cv(cv)
    if metric.startswith(("cv_mean.", "cv_std.")) and not folds:
        raise ValidationError(f"metric {metric!r} needs cross-validation; got cv={cv}")
    if settings is None and parent_run is not None:
        settings = parent_run._client.settings
    prepared = prepare(
        data,
        target=target,
        features=features,
        split=split,
        task=task,
        seed=seed,
        settings=settings,
    )
    check_folds(prepared, folds)
    fold_metric = metric.removeprefix("cv_mean.") if metric.startswith("cv_mean.") else None

    def objective(trial: optuna.Trial, run: ActiveRun) -> float:
        estimator = estimator_factory(space(trial))
        check_estimator(estimator)

        def on_fold(fold: int, running: dict[str, float]) -> None:
            if fold_metric is not None and fold_metric in running:
                trial.report(running[fold_metric], fold)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {fold}")

        result = train(estimator, prepared, folds, seed, run, on_fold)
        if metric not in result.metrics:
            raise ValidationError(
                f"metric {metric!r} was not logged by fit; it logged {sorted(result.metrics)}"
            )
        return result.metrics[metric]

    return tune(
        objective,
        n_trials=n_trials,
        study_name=study_name,
        direction=direction,
        settings=settings,
        experiment=experiment,
        sampler=sampler,
        pruner=pruner,
        timeout_s=timeout_s,
        n_jobs=n_jobs,
        parent_run=parent_run,
    )
