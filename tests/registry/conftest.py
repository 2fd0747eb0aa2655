"""A small dataset with a stored split, and two trained runs: a good and a useless model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from loopml.core import Settings
from loopml.data import DataCatalog, SplitSpec


@dataclass
class Trained:
    settings: Settings
    dataset: str
    good_run: str
    weak_run: str


def make_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    return frame


@pytest.fixture
def trained(settings: Settings) -> Iterator[Trained]:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    with DataCatalog(settings) as catalog:
        version = catalog.ingest(make_frame(), name="toy").version
        catalog.split(version.ref, SplitSpec(kind="stratified", column="label"), name="main")
    good = fit(
        LogisticRegression(), version.ref, target="label", split="main", settings=settings, cv=2
    )
    weak = fit(
        DummyClassifier(), version.ref, target="label", split="main", settings=settings, cv=2
    )
    yield Trained(settings, version.ref, good.run_id, weak.run_id)


def predicts_both_classes(model, version, frame):  # type: ignore[no-untyped-def]
    """A custom gate: the model must predict each class at least once on held-out rows."""
    seen = set(model.predict(frame).tolist())
    return len(seen) == 2, float(len(seen)), f"predicted classes {sorted(seen)}"
