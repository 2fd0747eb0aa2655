"""Data and objectives the training tests share; importable by spawned processes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.core import Settings
from loopml.tracking import Client


def easy_classification(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two informative columns and one of noise; the label is a clean linear rule."""
    rng = np.random.default_rng(seed)
    x1, x2, noise = rng.normal(size=(3, rows))
    label = (x1 + 0.5 * x2 > 0).astype("int64")
    return pd.DataFrame({"x1": x1, "x2": x2, "noise": noise, "label": label})


def easy_regression(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(2, rows))
    y = 3.0 * x1 - 2.0 * x2 + 10.0 + rng.normal(scale=0.1, size=rows)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


_OPEN: list[Client] = []


def client_for(settings: Settings) -> Client:
    """A tracking client that the autouse fixture closes after the test."""
    client = Client(settings)
    _OPEN.append(client)
    return client


def close_clients() -> None:
    while _OPEN:
        _OPEN.pop().close()
