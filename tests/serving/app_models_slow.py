"""A classifier for the batching tests: every ``predict`` call sleeps a moment and records
how many rows it was given, so requests that arrive meanwhile must queue behind it.

Its ``predict`` raises for a row whose feature ``a`` is above 1,000 (a value the training
data never has), like the app tests' moody model.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression


class SlowCountingClassifier(LogisticRegression):
    calls: ClassVar[list[int]] = []  # rows per predict call, in this process

    def predict(self, X: Any) -> Any:
        rows = np.asarray(X, dtype=float)
        SlowCountingClassifier.calls.append(len(rows))
        time.sleep(0.2)
        if (rows[:, 0] > 1000).any():
            raise RuntimeError("the model broke")
        return super().predict(X)
