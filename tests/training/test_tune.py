"""tune: Optuna studies in the loopml database, trials as nested runs, pruning, parallelism."""

from __future__ import annotations

import multiprocessing
from typing import Any

import optuna
import pytest
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from loopml.core import RunStatus, Settings, ValidationError
from loopml.store import HEAD_REVISION, open_store
from loopml.tracking import Client
from loopml.training import study_storage, tune, tune_estimator
from tests.training.helpers import client_for, easy_regression
from tests.training.workers import quadratic, tune_in_process


def _children(client: Client, parent_id: str) -> list[Any]:
    return list(client.search_runs(None, filter=f"attributes.parent_id = '{parent_id}'"))


def test_each_trial_is_a_nested_run_and_the_best_lands_on_the_parent(settings: Settings) -> None:
    result = tune(
        quadratic,
        n_trials=5,
        study_name="quad",
        settings=settings,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    assert result.states == {"COMPLETE": 5}
    assert len(result.trial_run_ids) == 5
    assert result.best_value == pytest.approx(result.study.best_value)
    assert result.best_params == result.study.best_params
    client = client_for(settings)
    children = _children(client, result.parent_run_id)
    assert sorted(run.id for run in children) == sorted(result.trial_run_ids)
    for run in children:
        assert run.status == RunStatus.FINISHED
        assert run.tags["loopml.trial.state"] == "COMPLETE"
        assert run.tags["loopml.study"] == "quad"
        x = float(run.params["x"])
        assert run.metrics["value"] == pytest.approx(-((x - 1) ** 2))
        assert run.metrics["x_squared"] == pytest.approx(x * x)
    trial_runs = {t.user_attrs["loopml.run_id"] for t in result.study.trials}
    assert trial_runs == set(result.trial_run_ids)
    parent = client.get_run(result.parent_run_id)
    assert parent.status == RunStatus.FINISHED
    assert parent.name == "quad" and parent.experiment_id == children[0].experiment_id
    assert float(parent.params["best.x"]) == pytest.approx(result.best_params["x"])
    assert parent.params["best.trial"] == str(result.best_trial)
    assert parent.metrics["best_value"] == pytest.approx(result.best_value)
    assert isinstance(result.study.pruner, optuna.pruners.MedianPruner)


def _reporting(trial: optuna.Trial, run: Any) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    for step in range(3):
        trial.report(x + step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return x


def test_pruned_trials_end_killed_with_their_intermediate_values(
    sqlite_settings: Settings,
) -> None:
    result = tune(
        _reporting,
        n_trials=8,
        study_name="pruning",
        settings=sqlite_settings,
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.ThresholdPruner(lower=0.0),  # prunes any negative report
    )

    assert result.states["PRUNED"] >= 1 and result.states["COMPLETE"] >= 1
    assert result.best_value >= 0
    client = client_for(sqlite_settings)
    for run in _children(client, result.parent_run_id):
        history = client.get_metric_history(run.id, "intermediate_value")
        if run.tags["loopml.trial.state"] == "PRUNED":
            assert run.status == RunStatus.KILLED
            assert "value" not in run.metrics
            assert [point.step for point in history] == [0]
            assert history[0].value < 0
        else:
            assert run.status == RunStatus.FINISHED
            assert [point.step for point in history] == [0, 1, 2]
            assert run.metrics["value"] == pytest.approx(float(run.params["x"]))


def test_a_failing_objective_fails_its_run_and_stops_the_study(sqlite_settings: Settings) -> None:
    def broken(trial: optuna.Trial, run: Any) -> float:
        trial.suggest_int("n", 1, 3)
        raise RuntimeError("objective broke")

    with client_for(sqlite_settings).start_run("tuning", name="outer") as parent:
        with pytest.raises(RuntimeError, match="objective broke"):
            tune(broken, n_trials=3, study_name="broken", parent_run=parent)
    (child,) = _children(client_for(sqlite_settings), parent.id)
    assert child.status == RunStatus.FAILED
    assert child.tags["loopml.trial.state"] == "FAIL"
    assert "n" in child.params


def test_a_nan_value_fails_the_trial_and_its_run(sqlite_settings: Settings) -> None:
    def undefined(trial: optuna.Trial, run: Any) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        return float("nan")

    with client_for(sqlite_settings).start_run("tuning", name="outer") as parent:
        with pytest.raises(ValidationError, match="no trial of study 'nan' completed"):
            tune(undefined, n_trials=2, study_name="nan", parent_run=parent)
    children = _children(client_for(sqlite_settings), parent.id)
    assert [run.status for run in children] == [RunStatus.FAILED] * 2
    assert {run.tags["loopml.trial.state"] for run in children} == {"FAIL"}


def test_two_processes_add_trials_to_one_study(settings: Settings) -> None:
    study_storage(settings)  # create the tables once, so the timing below is the trials'
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=tune_in_process, args=(settings, "shared", 3)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]

    study = optuna.load_study(study_name="shared", storage=study_storage(settings))
    assert len(optuna.get_all_study_names(storage=study_storage(settings))) == 1
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    runs = client_for(settings).search_runs("tuning")
    parents = [run for run in runs if run.parent_id is None]
    assert len(parents) == 2
    assert sum(len(_children(client_for(settings), p.id)) for p in parents) == 6
    # the loopml schema is untouched by Optuna's tables
    store = open_store(settings.db_url)
    assert store.revision() == HEAD_REVISION
    assert {"studies", "trials", "runs"} <= set(store.table_names())
    store.close()


def test_tune_estimator_fits_every_trial_into_its_run(
    shared_settings: Settings, shared_toy: str
) -> None:
    result = tune_estimator(
        lambda params: DecisionTreeClassifier(random_state=0, **params),
        lambda trial: {"max_depth": trial.suggest_int("max_depth", 1, 6)},
        shared_toy,
        target="label",
        split="main",
        cv=3,
        metric="cv_mean.accuracy",
        n_trials=3,
        study_name="trees",
        settings=shared_settings,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    assert result.states == {"COMPLETE": 3}
    assert set(result.best_params) == {"max_depth"}
    client = client_for(shared_settings)
    for run_id in result.trial_run_ids:
        run = client.get_run(run_id)
        assert run.metrics["value"] == pytest.approx(run.metrics["cv_mean.accuracy"])
        assert run.tags["loopml.dataset"] == "toy@1"
        assert [p.step for p in client.get_metric_history(run_id, "intermediate_value")] == [
            0,
            1,
            2,
        ]
        assert "model/meta.json" in {ref.path for ref in client.list_artifacts(run_id)}
    assert result.best_value == max(
        client.get_run(run_id).metrics["cv_mean.accuracy"] for run_id in result.trial_run_ids
    )


def test_tune_refuses_bad_arguments(sqlite_settings: Settings) -> None:
    with pytest.raises(ValidationError, match="n_trials must be an int >= 1"):
        tune(quadratic, n_trials=0, study_name="s", settings=sqlite_settings)
    with pytest.raises(ValidationError, match="direction must be"):
        tune(quadratic, n_trials=1, study_name="s", direction="up", settings=sqlite_settings)
    tune(quadratic, n_trials=1, study_name="s", settings=sqlite_settings)
    with pytest.raises(ValidationError, match="exists with direction maximize"):
        tune(quadratic, n_trials=1, study_name="s", direction="minimize", settings=sqlite_settings)
    with pytest.raises(ValidationError, match="was not logged by fit"):
        tune_estimator(
            lambda params: DecisionTreeRegressor(max_depth=2),
            lambda trial: {},
            easy_regression(),
            target="y",
            task="regression",
            cv=2,
            metric="test.accuracy",
            n_trials=1,
            study_name="bad-metric",
            settings=sqlite_settings,
        )
