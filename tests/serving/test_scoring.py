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

from loopml.serving._scoring import answers, matrix_copy, numeric_matrix


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


def test_an_overflowing_score_is_answered_as_predict_answers_it() -> None:
    """A huge input overflows a multiclass LogisticRegression's scores: its probabilities
    are NaN (no largest one), and the label must still be predict's."""
    x = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [0, 2], [0, 3]])
    model = LogisticRegression(C=100).fit(x, [0, 1, 1, 1, 2, 2, 2])
    huge = np.array([[1e308, 0.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        assert [a["prediction"] for a in answers(model, huge)] == model.predict(huge).tolist()


def test_rows_on_a_linear_boundary_get_predicts_labels_for_the_whole_batch() -> None:
    """Scores of about 1e-17 give [0.5, 0.5]; their sign, which predict goes by, depends in
    its last bits on the batch the scores are computed in."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 50))
    model = LogisticRegression().fit(x, (x[:, 0] + rng.normal(size=400) > 0).astype(int))
    w, b = model.coef_[0], model.intercept_[0]
    rows = rng.normal(size=(256, 50))
    for _ in range(3):  # move every row onto the boundary
        rows[:, 0] -= (rows @ w + b) / w[0]
    assert (model.predict_proba(rows)[:, 0] == 0.5).sum() > 100
    assert [a["prediction"] for a in answers(model, rows)] == model.predict(rows).tolist()


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=500),
        lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
        lambda: RandomForestClassifier(n_estimators=10, random_state=0),
        lambda: KNeighborsClassifier(),
    ],
)
def test_the_matrix_copy_answers_as_the_model_answers_a_frame(make: Any) -> None:
    """Given the rows column by column, the copy's answers equal the model's on a DataFrame
    bit for bit (a linear model included: its products are summed in the same order)."""
    x, y = make_classification(n_samples=400, n_features=20, random_state=5)
    names = [f"f{i}" for i in range(20)]
    frame = pd.DataFrame(x, columns=names)
    model = make().fit(frame, y)
    inputs = tuple({"name": name, "dtype": "float64"} for name in names)
    twin = matrix_copy(model, inputs)
    assert twin is not None
    rows = frame.head(64).to_dict("records")
    for batch in (rows[:1], rows[:7], rows):
        matrix = numeric_matrix(batch, names, order="F")
        assert answers(twin, matrix) == answers(model, pd.DataFrame(batch, columns=names))
