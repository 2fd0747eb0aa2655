"""A model's answers in one call where that is exact: the served label is always what the
model's own ``predict`` says, ties between probabilities included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from loopml.serving._scoring import answers


def _data(classes: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, n_classes=classes, random_state=3
    )
    return x, np.array(["no", "yes", "maybe"])[y]


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
        lambda: LogisticRegression(max_iter=500),
        lambda: RandomForestClassifier(n_estimators=10, random_state=0),
        lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
        lambda: KNeighborsClassifier(),  # in neither set: two calls
    ],
)
def test_answers_agree_with_the_models_own_predict_and_predict_proba(
    make: Any, classes: int
) -> None:
    x, y = _data(classes)
    model = make().fit(x[:400], y[:400])
    held_out = x[400:]
    got = answers(model, held_out)
    assert [a["prediction"] for a in got] == model.predict(held_out).tolist()
    expected = model.predict_proba(held_out)
    names = [str(c) for c in model.classes_]
    assert [[a["probabilities"][n] for n in names] for a in got] == expected.tolist()


def test_a_tie_between_probabilities_is_settled_by_predict() -> None:
    """A GradientBoosting model whose raw score is exactly 0 gives [0.5, 0.5]: the largest
    probability's first column would say the first class, but predict (score >= 0) says the
    second one, and so must the served answer."""
    x, y = _data(2)
    model = GradientBoostingClassifier(n_estimators=5, init="zero", random_state=0).fit(x, y)
    for tree in model.estimators_[:, 0]:
        tree.tree_.value[:] = 0.0  # every raw score is 0 now
    rows = pd.DataFrame(x[:5])
    assert model.predict_proba(rows).tolist() == [[0.5, 0.5]] * 5
    assert [a["prediction"] for a in answers(model, rows)] == model.predict(rows).tolist()
    assert set(model.predict(rows)) == {model.classes_[1]}
