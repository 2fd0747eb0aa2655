"""A quickly registered classifier for the batch and feedback tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.core import Settings
from loopml.registry import ModelRegistry


def register_toy(settings: Settings) -> str:
    """``toy@1``: a logistic regression on columns ``a``, ``b`` (classes 0 and 1)."""
    from sklearn.linear_model import LogisticRegression

    from loopml.data import DataCatalog
    from loopml.training import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = (x[:, 0] > 0).astype(int)
    with DataCatalog(settings) as catalog:
        ref = catalog.ingest(frame, name="toy").version.ref
    run = fit(LogisticRegression(), ref, target="label", settings=settings, cv=2)
    with ModelRegistry(settings) as registry:
        version = registry.register("toy", run_id=run.run_id)
        registry.set_alias(version.ref, "champion")
    return version.ref
