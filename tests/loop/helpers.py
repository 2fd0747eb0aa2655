"""Real parts for the loop tests: data whose concept moves, traffic routed and logged as
the serving app does, labels through feedback, and monitoring samples."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loopml.core import Settings, now_ms
from loopml.registry import ModelRegistry
from loopml.serving import (
    Deployments,
    Feedback,
    PredictionLog,
    PredictionRecord,
    new_prediction_id,
    route,
)


def rows(n: int, *, rule: str, seed: int, noise: float = 0.05) -> pd.DataFrame:
    """Features ``a`` and ``b``; the label follows ``a`` (rule "a") or ``b`` (rule "b"),
    with a share ``noise`` of labels flipped."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    label = (frame[rule] > 0).astype(int).to_numpy()
    flip = rng.random(n) < noise
    frame["label"] = np.where(flip, 1 - label, label)
    return frame


def serve(settings: Settings, deployment: str, frame: pd.DataFrame, seed: int = 0) -> list[str]:
    """Score every row with the version the deployment routes it to (as the app does:
    routed by ``route``, scored by the registered model) and log the answers."""
    with Deployments(settings) as deployments:
        spec = deployments.get(deployment).spec
    rng = random.Random(seed)
    features = frame[["a", "b"]]
    chosen = [route(spec, None, rng).primary for _ in range(len(features))]
    records: list[PredictionRecord | None] = [None] * len(features)
    with ModelRegistry(settings) as registry:
        for version in sorted(set(chosen)):
            at = [i for i, v in enumerate(chosen) if v == version]
            model = registry.load(version)
            started = time.perf_counter()
            part = features.iloc[at]
            predicted = model.predict(part)
            proba = model.predict_proba(part)
            latency = (time.perf_counter() - started) * 1000 / len(at)
            for j, i in enumerate(at):
                inputs = {k: float(v) for k, v in part.iloc[j].items()}
                output = {
                    "prediction": int(predicted[j]),
                    "probabilities": {"0": float(proba[j][0]), "1": float(proba[j][1])},
                }
                records[i] = PredictionRecord(
                    new_prediction_id(), now_ms(), deployment, version, inputs, output, latency
                )
    with PredictionLog(settings) as log:
        for future in log.append_many([r for r in records if r is not None]):
            future.result()
    return [r.prediction_id for r in records if r is not None]


def label(settings: Settings, ids: Sequence[str], labels: Sequence[int]) -> None:
    with Feedback(settings) as feedback:
        result = feedback.record(
            [{"prediction_id": i, "label": int(y)} for i, y in zip(ids, labels, strict=True)]
        )
    assert result.unknown == []


def serve_and_label(
    settings: Settings, deployment: str, frame: pd.DataFrame, seed: int = 0
) -> None:
    label(settings, serve(settings, deployment, frame, seed), frame["label"].tolist())


@dataclass(frozen=True)
class Sample:
    """A monitoring sample (name, labels, value), as monitoring reports them."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Samples:
    """A sample source the test sets: what monitoring would report now."""

    current: dict[str, list[Sample]] = field(default_factory=dict)

    def samples(self, deployment: str) -> Sequence[Sample]:
        return self.current.get(deployment, [])

    def drift(
        self, deployment: str, share: float, features: Mapping[str, bool] | None = None
    ) -> None:
        base = {"deployment": deployment}
        found = [
            Sample("loopml_drift_share", base, share),
            Sample("loopml_dataset_drifted", base, float(share >= 0.5)),
        ]
        for name, drifted in (features or {}).items():
            found.append(
                Sample("loopml_feature_drifted", {**base, "feature": name}, float(drifted))
            )
        self.current[deployment] = found


class Clock:
    """A controller clock the test moves by hand (milliseconds)."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01 00:00 UTC
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
