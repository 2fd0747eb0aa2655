"""The training pipeline the loop tests retrain with: fit on the newest dataset version
and register the model, as a user's pipeline would."""

from __future__ import annotations

from loopml.pipelines import current_step, pipeline, step


@step(cache=False)  # reads the newest dataset version itself: never a cache hit
def train_and_register(
    dataset_name: str, model: str, estimator: str, cutoff_ms: int, sleep_s: float
) -> str:
    import time

    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from loopml.registry import ModelRegistry
    from loopml.training import fit

    time.sleep(sleep_s)  # the lock and crash tests need a retrain that takes a while
    context = current_step()
    chosen = LogisticRegression() if estimator == "logistic" else DummyClassifier()
    with context.start_run() as run:
        result = fit(chosen, dataset_name, target="label", cv=0, run=run)
    with ModelRegistry(context.settings) as registry:
        return registry.register(model, run_id=result.run_id).ref


@pipeline
def train(
    dataset_name: str = "events",
    model: str = "churn",
    estimator: str = "logistic",
    cutoff_ms: int = 0,
    sleep_s: float = 0.0,
):
    train_and_register(dataset_name, model, estimator, cutoff_ms, sleep_s)


@step(cache=False)
def train_then_freeze(cutoff_ms: int) -> str:
    """Trains and registers as ``train`` does; meanwhile (training takes a while) traffic
    arrives and gets labels, and an operator freezes the loop of ``churn-api``."""
    from sklearn.linear_model import LogisticRegression

    from loopml.loop import LoopController
    from loopml.registry import ModelRegistry
    from loopml.training import fit
    from tests.loop.helpers import rows, serve_and_label

    context = current_step()
    with context.start_run() as run:
        result = fit(LogisticRegression(), "events", target="label", cv=0, run=run)
    with ModelRegistry(context.settings) as registry:
        ref = registry.register("churn", run_id=result.run_id).ref
    serve_and_label(context.settings, "churn-api", rows(300, rule="b", seed=10))
    with LoopController(context.settings) as operator:
        operator.freeze("churn-api", reason="quarter close")
    return ref


@pipeline
def train_frozen_meanwhile(cutoff_ms: int = 0):
    train_then_freeze(cutoff_ms)
