"""fit: cross-validation, evaluation on stored split parts, and what reaches the run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, RidgeClassifier
from sklearn.tree import DecisionTreeClassifier

from loopml.core import RunStatus, Settings
from loopml.data import DataCatalog
from loopml.training import (
    META_PATH,
    MODEL_PATH,
    classification_metrics,
    detect_task,
    fit,
    load_model,
    read_model_meta,
)
from tests.training.helpers import client_for, easy_classification, easy_regression

CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION = ("mae", "rmse", "mape", "r2")


def _tree() -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=4, random_state=0)


def test_fit_on_a_stored_split_logs_metrics_params_tags_and_the_model(
    settings: Settings, toy: str
) -> None:
    result = fit(_tree(), toy, target="label", split="main", cv=3, settings=settings)

    assert result.task == "classification"
    assert result.features == ["x1", "x2", "noise"]
    assert (result.dataset, result.split, result.target) == ("toy@1", "main", "label")
    for prefix in ("cv_mean", "cv_std", "train", "validation", "test"):
        for metric in CLASSIFICATION:
            assert np.isfinite(result.metrics[f"{prefix}.{metric}"]), (prefix, metric)
    assert result.metrics["test.accuracy"] > 0.8
    assert result.metrics["validation.roc_auc"] > 0.8
    assert 0 <= result.metrics["cv_std.accuracy"] < 0.2

    client = client_for(settings)
    run = client.get_run(result.run_id)
    assert run.status == RunStatus.FINISHED
    assert run.params["max_depth"] == "4"
    assert run.params["random_state"] == "0"
    assert run.params["fit.cv"] == "3"
    assert run.tags["loopml.dataset"] == "toy@1"
    assert run.tags["loopml.dataset.digest"].startswith("blake3:")
    assert run.tags["loopml.split"] == "main"
    assert run.tags["loopml.target"] == "label"
    assert json.loads(run.tags["loopml.features"]) == ["x1", "x2", "noise"]
    assert run.tags["loopml.task"] == "classification"
    assert run.tags["loopml.estimator"] == "sklearn.tree._classes.DecisionTreeClassifier"
    assert run.metrics["test.accuracy"] == pytest.approx(result.metrics["test.accuracy"])
    folds = client.get_metric_history(result.run_id, "cv.accuracy")
    assert [point.step for point in folds] == [0, 1, 2]
    assert np.mean([p.value for p in folds]) == pytest.approx(result.metrics["cv_mean.accuracy"])

    assert {ref.path for ref in client.list_artifacts(result.run_id)} == {MODEL_PATH, META_PATH}
    loaded = load_model(result.run_id, settings=settings)
    frame = easy_classification()
    with DataCatalog(settings) as catalog:
        test_rows = catalog.get_split(toy, "main")["test"]
        counts = {s["name"]: s["counts"] for s in catalog.splits(toy)}["main"]
    test = frame.iloc[test_rows]
    # the test part is exactly the stored split's rows: re-scoring them gives the logged value
    rescored = classification_metrics(test["label"], loaded.predict(test[result.features]))
    assert rescored["accuracy"] == pytest.approx(result.metrics["test.accuracy"])
    assert (
        loaded.predict(frame[result.features]) == result.model.predict(frame[result.features])
    ).all()

    meta = read_model_meta(result.run_id, settings=settings)
    assert meta["format"] == 1 and meta["flavor"] == "sklearn"
    assert meta["artifact"] == MODEL_PATH and meta["file"] == "model.joblib"
    assert meta["estimator"] == "sklearn.tree._classes.DecisionTreeClassifier"
    assert (meta["task"], meta["target"], meta["dataset"], meta["split"]) == (
        "classification",
        "label",
        "toy@1",
        "main",
    )
    assert meta["features"] == ["x1", "x2", "noise"]
    assert meta["signature"]["inputs"] == [
        {"name": "x1", "dtype": "float64", "nullable": False},
        {"name": "x2", "dtype": "float64", "nullable": False},
        {"name": "noise", "dtype": "float64", "nullable": False},
    ]
    assert meta["signature"]["outputs"] == {"name": "label", "dtype": "int64", "classes": [0, 1]}
    assert {"scikit-learn", "numpy", "pandas", "joblib"} <= set(meta["libraries"])
    assert meta["rows"] == counts
    assert meta["split_spec"]["kind"] == "stratified"
    assert meta["dataset_digest"] == run.tags["loopml.dataset.digest"]


def test_regression_on_a_dataframe_splits_80_20_and_logs_no_dataset(
    sqlite_settings: Settings,
) -> None:
    frame = easy_regression()
    result = fit(LinearRegression(), frame, target="y", cv=3, settings=sqlite_settings)

    assert result.task == "regression"
    assert result.dataset is None and result.split == "auto"
    assert set(result.metrics) == {
        f"{prefix}.{metric}"
        for prefix in ("cv_mean", "cv_std", "train", "test")
        for metric in REGRESSION
    }
    assert result.metrics["test.r2"] > 0.99
    assert result.metrics["test.rmse"] < 0.2
    run = client_for(sqlite_settings).get_run(result.run_id)
    assert "loopml.dataset" not in run.tags
    assert run.tags["loopml.split"] == "auto"
    spec = json.loads(run.tags["loopml.split.spec"])
    assert (spec["kind"], spec["ratios"], spec["seed"]) == ("random", [0.8, 0.2], 0)
    assert json.loads(run.tags["loopml.split.rows"]) == {"train": 240, "test": 60}
    meta = read_model_meta(result.run_id, settings=sqlite_settings)
    assert meta["signature"]["outputs"] == {"name": "y", "dtype": "float64"}
    assert meta["dataset"] is None and meta["task"] == "regression"


def test_the_automatic_split_is_stratified_and_seeded(sqlite_settings: Settings) -> None:
    frame = easy_classification(rows=200)
    first = fit(_tree(), frame, target="label", cv=0, settings=sqlite_settings, seed=5)
    again = fit(_tree(), frame, target="label", cv=0, settings=sqlite_settings, seed=5)
    other = fit(_tree(), frame, target="label", cv=0, settings=sqlite_settings, seed=6)

    assert first.metrics == again.metrics
    assert first.metrics != other.metrics
    assert not any(key.startswith("cv") for key in first.metrics)
    run = client_for(sqlite_settings).get_run(first.run_id)
    spec = json.loads(run.tags["loopml.split.spec"])
    assert (spec["kind"], spec["column"], spec["seed"]) == ("stratified", "label", 5)


def test_multiclass_string_labels(sqlite_settings: Settings) -> None:
    frame = easy_classification(rows=300)
    frame["label"] = np.where(frame.x1 > 0.5, "high", np.where(frame.x1 < -0.5, "low", "mid"))
    result = fit(
        _tree(), frame, target="label", features=["x1", "x2"], cv=3, settings=sqlite_settings
    )

    assert result.task == "classification"
    assert result.metrics["test.accuracy"] > 0.9
    assert 0.9 < result.metrics["test.roc_auc"] <= 1.0
    meta = read_model_meta(result.run_id, settings=sqlite_settings)
    assert meta["signature"]["outputs"]["classes"] == ["high", "low", "mid"]
    assert [column["name"] for column in meta["signature"]["inputs"]] == ["x1", "x2"]


def test_an_estimator_without_predict_proba_skips_auc_and_log_loss_with_a_note(
    sqlite_settings: Settings,
) -> None:
    result = fit(
        RidgeClassifier(), easy_classification(), target="label", cv=2, settings=sqlite_settings
    )
    assert result.metrics["test.accuracy"] > 0.9
    assert "test.roc_auc" not in result.metrics and "test.log_loss" not in result.metrics
    note = client_for(sqlite_settings).get_run(result.run_id).tags["loopml.metrics.note"]
    assert "roc_auc and log_loss skipped" in note and "RidgeClassifier" in note


def test_task_can_be_forced_and_nullable_features_are_recorded(sqlite_settings: Settings) -> None:
    frame = easy_regression(rows=120)
    frame["y"] = (frame["y"] * 10).round().astype("int64")  # whole numbers, but many of them
    frame.loc[3, "x2"] = np.nan
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=10)
    auto = fit(model, frame, target="y", cv=0, settings=sqlite_settings)
    assert auto.task == "regression"  # more than 20 distinct values
    inputs = read_model_meta(auto.run_id, settings=sqlite_settings)["signature"]["inputs"]
    assert {c["name"]: c["nullable"] for c in inputs} == {"x1": False, "x2": True}

    frame["y"] = (frame["y"] // 100).astype("int64")  # a few whole numbers: looks like classes
    assert detect_task(frame["y"]) == "classification"
    forced = fit(model, frame, target="y", cv=0, task="regression", settings=sqlite_settings)
    assert forced.task == "regression" and "test.r2" in forced.metrics


def test_fit_logs_into_a_run_it_is_given_and_leaves_it_open(sqlite_settings: Settings) -> None:
    client = client_for(sqlite_settings)
    with client.start_run("mine", name="outer") as run:
        result = fit(_tree(), easy_classification(), target="label", cv=2, run=run)
        assert result.run_id == run.id
        assert run.status == RunStatus.RUNNING
        run.log_metric("after", 1.0)
    stored = client.get_run(run.id)
    assert stored.status == RunStatus.FINISHED
    assert {"after", "test.accuracy"} <= set(stored.metrics)


def test_lightgbm_goes_through_the_same_api(shared_settings: Settings, shared_toy: str) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    estimator = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1)
    result = fit(
        estimator, shared_toy, target="label", split="main", cv=2, settings=shared_settings
    )

    assert result.metrics["test.accuracy"] > 0.8
    assert result.metrics["test.roc_auc"] > 0.9
    meta = read_model_meta(result.run_id, settings=shared_settings)
    assert meta["estimator"] == "lightgbm.sklearn.LGBMClassifier"
    assert meta["libraries"]["lightgbm"] == lightgbm.__version__
    params = client_for(shared_settings).get_run(result.run_id).params
    assert params["num_leaves"] == "7"
    loaded = load_model(result.run_id, settings=shared_settings)
    frame = pd.DataFrame({"x1": [2.0, -2.0], "x2": [0.0, 0.0], "noise": [0.0, 0.0]})
    assert loaded.predict(frame).tolist() == [1, 0]


def test_fit_runs_as_a_pipeline_step(shared_settings: Settings, shared_toy: str) -> None:
    from tests.training.pipes import training

    outcome = training.run({"ref": shared_toy}, settings=shared_settings)
    assert outcome.status == "succeeded", outcome.error
    run = client_for(shared_settings).get_run(outcome.step("train_tree").tracking_run_id)
    assert run.parent_id == outcome.tracking_run_id
    assert run.tags["loopml.step"] == "train_tree"
    assert run.tags["loopml.dataset"] == "toy@1"
    assert run.metrics["test.accuracy"] > 0.8
    assert run.params["max_depth"] == "3"
