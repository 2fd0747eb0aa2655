"""``fit``: cross-validate and train an estimator on a dataset version, log it all to a run."""

from __future__ import annotations

import copy
import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core import Settings, ValidationError
from loopml.training._inputs import TrainingData, prepare
from loopml.training._metrics import classification_metrics, regression_metrics
from loopml.training._model import MODEL_DIR, build_meta, qualified_name

if TYPE_CHECKING:
    import pandas as pd

    from loopml.data import SplitSpec
    from loopml.tracking import ActiveRun

__all__ = [
    "FoldHook",
    "TrainResult",
    "check_cv",
    "check_estimator",
    "check_folds",
    "estimator_params",
    "fit",
    "train",
]

FoldHook = Callable[[int, dict[str, float]], None]
_MAX_PARAM = 6000
_UNSAFE_KEY = re.compile(r"[^\w\-./ :]")


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What :func:`fit` made: the fitted model, its run and every metric it logged."""

    model: Any
    run_id: str
    metrics: dict[str, float]
    task: str
    features: list[str]
    target: str
    dataset: str | None
    split: str


def check_estimator(estimator: object) -> None:
    if isinstance(estimator, type):
        raise ValidationError(
            f"estimator must be an instance, not the class {estimator.__name__}; "
            f"write {estimator.__name__}()"
        )
    for method in ("fit", "predict"):
        if not callable(getattr(estimator, method, None)):
            raise ValidationError(
                f"estimator {qualified_name(estimator)} has no {method}() method; fit needs "
                "a scikit-learn-compatible estimator (fit(X, y) and predict(X))"
            )


def check_cv(cv: object) -> int:
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 0 or cv == 1:
        raise ValidationError(f"cv must be 0 (no cross-validation) or an int >= 2; got {cv!r}")
    return cv


def _fresh(estimator: Any) -> Any:
    """An unfitted copy: ``sklearn.clone`` when the estimator supports it, else a deep copy."""
    from sklearn.base import clone

    try:
        return clone(estimator)
    except (TypeError, RuntimeError):
        return copy.deepcopy(estimator)


def _param_text(value: Any) -> str:
    if hasattr(value, "fit") or hasattr(value, "get_params"):
        return qualified_name(value)
    if callable(value):
        return str(getattr(value, "__qualname__", None) or qualified_name(value))
    text = str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def estimator_params(estimator: Any) -> dict[str, str]:
    """``get_params(deep=True)`` as loggable params: keys made safe, values as strings.

    Nested estimators (pipeline steps, ensemble members) appear as their class name;
    their own parameters follow as ``step__param``.
    """
    get_params = getattr(estimator, "get_params", None)
    if not callable(get_params):
        return {}
    try:
        params = get_params(deep=True)
    except TypeError:
        params = get_params()
    return {
        _UNSAFE_KEY.sub("_", str(key))[:250]: _param_text(value)
        for key, value in sorted(params.items(), key=lambda item: str(item[0]))
    }


def _score(model: Any, data: TrainingData, X: pd.DataFrame, y: pd.Series[Any]) -> dict[str, float]:
    predicted = model.predict(X)
    if data.task == "regression":
        return regression_metrics(y, predicted)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    classes = getattr(model, "classes_", None)
    return classification_metrics(
        y, predicted, proba, classes=None if classes is None else list(classes)
    )


def check_folds(data: TrainingData, cv: int) -> None:
    y = data.parts["train"][data.target]
    if not cv:
        return
    if data.task == "classification":
        counts = y.value_counts()
        if int(counts.min()) < cv:
            raise ValidationError(
                f"cv={cv} needs at least {cv} rows of every class in the 'train' part; "
                f"class {counts.idxmin()!r} of {data.target!r} has {int(counts.min())}"
            )
    elif len(y) < cv:
        raise ValidationError(f"cv={cv} needs at least {cv} rows in 'train'; got {len(y)}")


def _folds(data: TrainingData, cv: int, seed: int) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y = data.xy("train")
    splitter: Any
    if data.task == "classification":
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    return list(splitter.split(X, y))


def _cross_validate(
    estimator: Any,
    data: TrainingData,
    cv: int,
    seed: int,
    run: ActiveRun,
    on_fold: FoldHook | None,
) -> dict[str, float]:
    X, y = data.xy("train")
    scores: dict[str, list[float]] = {}
    for fold, (fit_rows, score_rows) in enumerate(_folds(data, cv, seed)):
        model = _fresh(estimator)
        model.fit(X.iloc[fit_rows], y.iloc[fit_rows])
        for key, value in _score(model, data, X.iloc[score_rows], y.iloc[score_rows]).items():
            scores.setdefault(key, []).append(value)
            run.log_metric(f"cv.{key}", value, step=fold)
        if on_fold is not None:
            on_fold(fold, {key: float(np.mean(values)) for key, values in scores.items()})
    summary = {}
    for key, values in scores.items():
        summary[f"cv_mean.{key}"] = float(np.mean(values))
        summary[f"cv_std.{key}"] = float(np.std(values))
    return summary


def _log_inputs(estimator: Any, data: TrainingData, cv: int, seed: int, run: ActiveRun) -> None:
    run.log_params(estimator_params(estimator))
    run.log_params({"fit.cv": cv, "fit.seed": seed})
    tags = {
        "loopml.split": data.split,
        "loopml.split.spec": json.dumps(data.split_spec, sort_keys=True),
        "loopml.split.rows": json.dumps(data.counts),
        "loopml.target": data.target,
        "loopml.features": json.dumps(data.features),
        "loopml.task": data.task,
        "loopml.estimator": qualified_name(estimator),
    }
    if data.dataset is not None:
        tags["loopml.dataset"] = data.dataset
        tags["loopml.dataset.digest"] = str(data.dataset_digest)
    if data.task == "classification" and not hasattr(estimator, "predict_proba"):
        tags["loopml.metrics.note"] = (
            f"roc_auc and log_loss skipped: {type(estimator).__name__} has no predict_proba"
        )
    run.set_tags(tags)


def train(
    estimator: Any,
    data: TrainingData,
    cv: int,
    seed: int,
    run: ActiveRun,
    on_fold: FoldHook | None = None,
) -> TrainResult:
    """``fit`` on prepared data, logging into ``run``; ``on_fold(fold, running means)``."""
    import joblib

    _log_inputs(estimator, data, cv, seed, run)
    metrics = _cross_validate(estimator, data, cv, seed, run, on_fold) if cv else {}
    model = _fresh(estimator)
    model.fit(*data.xy("train"))
    for part, frame in data.parts.items():
        if frame.empty:
            continue
        for key, value in _score(model, data, *data.xy(part)).items():
            metrics[f"{part}.{key}"] = value
    run.log_metrics(metrics)
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as folder:
        target = Path(folder) / MODEL_DIR
        target.mkdir()
        joblib.dump(model, target / "model.joblib")
        meta = build_meta(model, data)
        (target / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        run.log_artifact(target, MODEL_DIR)
    return TrainResult(
        model=model,
        run_id=run.id,
        metrics=metrics,
        task=data.task,
        features=list(data.features),
        target=data.target,
        dataset=data.dataset,
        split=data.split,
    )


def fit(
    estimator: Any,
    data: str | pd.DataFrame,
    *,
    target: str,
    features: Sequence[str] | None = None,
    split: str | SplitSpec | None = None,
    cv: int = 5,
    task: str = "auto",
    experiment: str = "training",
    run: ActiveRun | None = None,
    settings: Settings | None = None,
    seed: int = 0,
    name: str | None = None,
) -> TrainResult:
    """Cross-validate, train and evaluate ``estimator``; log everything to a run.

    Args:
        estimator: any scikit-learn-compatible estimator (``fit``/``predict``; also
            XGBoost, LightGBM). It is a template: copies are fitted, it stays unfitted.
        data: ``"name@version"`` (or ``"name"`` for the latest) of a table in the data
            catalog, or a pandas DataFrame (then the run has no dataset lineage).
        target: the column to predict.
        features: the input columns; by default every column but ``target``.
        split: the name of a split stored for the dataset version; its ``train`` part is
            trained on and every other part (``validation``, ``test``, ...) evaluated.
            A :class:`~loopml.data.SplitSpec` splits on the fly. None splits 80/20 into
            train/test, stratified on the target for classification, seeded by ``seed``.
        cv: folds of cross-validation on the train part (stratified for
            classification); 0 skips it.
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (see
            :func:`~loopml.training.detect_task`).
        experiment, name: where the run goes when ``fit`` opens its own.
        run: log into this open run instead (e.g. a pipeline step's
            ``current_step().start_run()``); ``fit`` leaves it open.
        settings: the store; by default the run's, else the environment's.
        seed: seeds the folds and the automatic split.

    Returns:
        The fitted model, the run id and the metrics: ``cv.<m>`` per fold (step = fold),
        ``cv_mean.<m>``, ``cv_std.<m>``, and ``<part>.<m>`` for every part.

    Raises:
        ValidationError: a missing target or feature column, an estimator without
            fit/predict, too few rows per class for ``cv``, a bad argument.
        NotFoundError: the dataset, its version or the named split does not exist.
    """
    check_estimator(estimator)
    folds = check_cv(cv)
    if settings is None and run is not None:
        settings = run._client.settings
    data_parts = prepare(
        data,
        target=target,
        features=features,
        split=split,
        task=task,
        seed=seed,
        settings=settings,
    )
    check_folds(data_parts, folds)
    if run is not None:
        return train(estimator, data_parts, folds, seed, run)
    from loopml.tracking import Client

    run_name = name or f"fit-{type(estimator).__name__}"
    with Client.default(settings).start_run(experiment, name=run_name) as own:
        return train(estimator, data_parts, folds, seed, own)
