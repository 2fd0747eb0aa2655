"""A monitored deployment for the monitor's tests: a dataset version, a registered
classifier trained on it (so the registry holds its reference profile), a deployment, and
helpers that log predictions the way the serving app does and send labels back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import Settings
from loopml.data import DataCatalog, SplitSpec
from loopml.registry import ModelRegistry
from loopml.serving import (
    Deployments,
    DeploymentSpec,
    Feedback,
    PredictionLog,
    PredictionRecord,
    new_prediction_id,
)

DEPLOYMENT = "churn-api"
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, an hour boundary


def features(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Inputs like the training data; ``shift`` moves feature ``a`` (drifted traffic)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(shift, 1.0, rows), "b": rng.normal(0.0, 1.0, rows)})


def truth(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    return np.asarray((frame["a"] + 0.5 * frame["b"] > 0).astype(int))


@dataclass
class World:
    settings: Settings
    model: Any  # churn@1, loaded

    def log(
        self,
        frame: pd.DataFrame,
        ts_ms: Sequence[int] | int,
        *,
        version: str = "churn@1",
        latency_ms: float = 2.0,
        fallback: bool = False,
    ) -> list[str]:
        """Log the model's answers for ``frame`` (one segment per call); their ids."""
        stamps = [ts_ms] * len(frame) if isinstance(ts_ms, int) else list(ts_ms)
        labels = self.model.predict(frame)
        proba = self.model.predict_proba(frame)
        records = []
        for i, row in enumerate(frame.to_dict("records")):
            output: dict[str, Any] = {
                "prediction": int(labels[i]),
                "probabilities": {"0": float(proba[i, 0]), "1": float(proba[i, 1])},
            }
            records.append(
                PredictionRecord(
                    new_prediction_id(),
                    int(stamps[i]),
                    DEPLOYMENT,
                    version,
                    row,
                    output,
                    latency_ms,
                    fallback,
                )
            )
        with PredictionLog(self.settings, durable=False) as log:
            for future in log.append_many(records):
                future.result()
        return [r.prediction_id for r in records]

    def label(self, ids: Sequence[str], values: Sequence[Any]) -> int:
        with Feedback(self.settings) as feedback:
            items = [
                {"prediction_id": p, "label": int(v)} for p, v in zip(ids, values, strict=True)
            ]
            return feedback.record(items, source="test").accepted


def make_world(settings: Settings) -> World:
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    frame = features(600, seed=0)
    frame["label"] = truth(frame)
    with DataCatalog(settings) as catalog:
        version = catalog.ingest(frame, name="traffic").version
        catalog.split(version.ref, SplitSpec(kind="stratified", column="label"), name="main")
    run = fit(
        LogisticRegression(), version.ref, target="label", split="main", settings=settings, cv=0
    )
    with ModelRegistry(settings) as registry:
        registry.register("churn", run_id=run.run_id)
        model = registry.load("churn@1")
    with Deployments(settings) as deployments:
        deployments.deploy(DEPLOYMENT, DeploymentSpec.single("churn@1"))
    return World(settings, model)
