"""``tune``: an Optuna study stored in the loopml database, every trial a nested run.

Run states, trial by trial (each trial's run is a child of the process's parent run):

    Optuna trial state   run status   tag loopml.trial.state
    COMPLETE             FINISHED     COMPLETE   (metric "value" = the objective's value)
    PRUNED               KILLED       PRUNED     (stopped early on purpose; no "value")
    FAIL                 FAILED       FAIL       (the objective raised, and the study stops;
                                                 or it returned None or NaN)

A pruned trial's run is KILLED, not FINISHED, so that searching finished runs finds
only trials that ran to the end, and not FAILED, which is kept for errors.
"""

from __future__ import annotations

import math
import numbers
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.core import RunStatus, Settings, ValidationError
from loopml.training._storage import study_storage

if TYPE_CHECKING:
    import optuna

    from loopml.tracking import ActiveRun

__all__ = ["TuneResult", "tune"]

_UNSAFE_KEY = re.compile(r"[^\w\-./ :]")
Objective = Callable[["optuna.Trial", "ActiveRun"], float]


@dataclass(frozen=True, slots=True)
class TuneResult:
    """A study after this process's trials: the best over *all* of its trials so far.

    ``trial_run_ids`` and ``states`` cover only the trials this call ran; other
    processes working on the same study add theirs to ``study``.
    """

    study: optuna.Study
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    parent_run_id: str
    trial_run_ids: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def _log_trial_params(run: ActiveRun, params: dict[str, Any]) -> None:
    for name, value in params.items():
        key = _UNSAFE_KEY.sub("_", name)[:240]
        try:
            run.log_param(key, value)
        except ValidationError:  # the objective logged this param with another value
            run.log_param(f"trial.{key}", value)


def _trial_runner(
    objective: Objective,
    parent: ActiveRun,
    study_name: str,
    run_ids: list[str],
    states: dict[str, int],
) -> Callable[[optuna.Trial], float]:
    import optuna

    lock = threading.Lock()  # n_jobs > 1 runs trials in threads

    def run_trial(trial: optuna.Trial) -> float:
        child = parent.start_child(
            name=f"{study_name}-trial-{trial.number}",
            tags={"loopml.study": study_name, "loopml.trial.number": trial.number},
        )
        run_ids.append(child.id)
        trial.set_user_attr("loopml.run_id", child.id)
        report = trial.report

        def report_and_log(value: float, step: int) -> None:
            report(value, step)
            child.log_metric("intermediate_value", value, step=step)

        trial.report = report_and_log  # type: ignore[method-assign]
        state, status = "FAIL", RunStatus.FAILED
        try:
            value = objective(trial, child)
            if (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and not math.isnan(value)
            ):
                state, status = "COMPLETE", RunStatus.FINISHED
                child.log_metric("value", float(value))
            # else Optuna fails the trial (a value that is not a number), and so does its run
            return value
        except optuna.TrialPruned:
            state, status = "PRUNED", RunStatus.KILLED
            raise
        except KeyboardInterrupt:
            status = RunStatus.KILLED
            raise
        finally:
            with lock:
                states[state] = states.get(state, 0) + 1
            _log_trial_params(child, trial.params)
            child.set_tag("loopml.trial.state", state)
            child.end(status)

    return run_trial


def tune(
    objective: Objective,
    *,
    n_trials: int,
    study_name: str,
    direction: str = "maximize",
    settings: Settings | None = None,
    experiment: str = "tuning",
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    timeout_s: float | None = None,
    n_jobs: int = 1,
    parent_run: ActiveRun | None = None,
) -> TuneResult:
    """Run ``n_trials`` trials of ``objective`` in the study ``study_name``.

    The study lives in the loopml database (see :func:`study_storage`) and is
    created on first use, so several processes or Ray workers calling ``tune`` with
    the same ``study_name`` and store share one study and its sampler's history.

    Args:
        objective: ``objective(trial, run) -> float``; ``trial`` is the Optuna trial
            (``trial.suggest_*``; ``trial.report(value, step)`` then
            ``trial.should_prune()`` to prune), ``run`` the trial's nested run to log to.
            Reported values are also logged as the metric ``intermediate_value``.
        n_trials: trials this call runs (other processes may add more).
        study_name: the study to create or join.
        direction: ``"maximize"`` or ``"minimize"``; must match an existing study's.
        settings: the store; by default the parent run's, else the environment's.
        experiment: where the parent run goes when ``tune`` opens it.
        sampler: Optuna sampler (default TPE).
        pruner: Optuna pruner (default ``MedianPruner()``).
        timeout_s: stop starting trials after this many seconds.
        n_jobs: trials at once in this process (threads).
        parent_run: the run the trials nest under; by default ``tune`` opens one
            (named after the study) and ends it.

    Returns:
        The study, the best trial's params, value and number, the parent run and the
        runs of this call's trials. The parent run gets params ``best.<name>`` and
        ``best.trial``, and the metric ``best_value``.

    Raises:
        ValidationError: bad arguments, or no trial of the study completed.
    """
    import optuna

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValidationError(f"n_trials must be an int >= 1; got {n_trials!r}")
    if direction not in ("maximize", "minimize"):
        raise ValidationError(f"direction must be 'maximize' or 'minimize'; got {direction!r}")
    if not isinstance(study_name, str) or not study_name.strip():
        raise ValidationError(f"study_name must be a non-empty string; got {study_name!r}")
    if settings is None and parent_run is not None:
        settings = parent_run._client.settings
    storage = study_storage(settings)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction=(
            optuna.study.StudyDirection.MAXIMIZE
            if direction == "maximize"
            else optuna.study.StudyDirection.MINIMIZE
        ),
        sampler=sampler,
        pruner=pruner if pruner is not None else optuna.pruners.MedianPruner(),
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ValidationError(
            f"study {study_name!r} exists with direction {study.direction.name.lower()}; "
            f"got direction={direction!r}"
        )
    if parent_run is not None:
        return _optimize(study, objective, parent_run, n_trials, timeout_s, n_jobs)
    from loopml.tracking import Client

    with Client.default(settings).start_run(experiment, name=study_name) as parent:
        return _optimize(study, objective, parent, n_trials, timeout_s, n_jobs)


def _optimize(
    study: optuna.Study,
    objective: Objective,
    parent: ActiveRun,
    n_trials: int,
    timeout_s: float | None,
    n_jobs: int,
) -> TuneResult:
    parent.set_tags(
        {
            "loopml.study": study.study_name,
            "loopml.study.direction": study.direction.name.lower(),
        }
    )
    run_ids: list[str] = []
    states: dict[str, int] = {}
    runner = _trial_runner(objective, parent, study.study_name, run_ids, states)
    study.optimize(runner, n_trials=n_trials, timeout=timeout_s, n_jobs=n_jobs)
    try:
        best = study.best_trial
    except ValueError as exc:
        raise ValidationError(
            f"no trial of study {study.study_name!r} completed ({states}); nothing to report"
        ) from exc
    value = float(best.value) if best.value is not None else math.nan
    best_params = {f"best.{key}": item for key, item in best.params.items()}
    try:
        parent.log_params({**best_params, "best.trial": best.number})
    except ValidationError:  # a parent run reused for a second study keeps its first params
        parent.set_tags({**best_params, "best.trial": best.number})
    parent.log_metrics({"best_value": value, "trials": len(run_ids)})
    return TuneResult(
        study=study,
        best_params=dict(best.params),
        best_value=value,
        best_trial=best.number,
        parent_run_id=parent.id,
        trial_run_ids=run_ids,
        states=states,
    )
