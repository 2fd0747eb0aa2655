"""A classifier for the app's tests that misbehaves on demand, by its input.

Its ``predict`` raises when feature ``a`` is above 1,000 and sleeps for a second when it
is below -1,000: values the training data never has, so ``fit`` evaluates it normally.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression


class MoodyClassifier(LogisticRegression):
    def _mood(self, x: Any) -> None:
        first = np.asarray(x, dtype=float)[:, 0]
        if (first > 1000).any():
            raise RuntimeError("the model broke")
        if (first < -1000).any():
            time.sleep(1.0)

    def predict(self, X: Any) -> Any:
        self._mood(X)
        return super().predict(X)
