"""GradientBoosting scored with numpy: the same answers as scikit-learn, bit for bit, or no
compiled scorer at all."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from loopml.serving._scoring import answers
from loopml.serving._trees import compile_boosting


def _data(classes: int = 2, rows: int = 1500) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = make_classification(
        n_samples=rows, n_features=8, n_informative=5, n_classes=classes, random_state=4
    )
    return x, np.array(["no", "yes", "maybe"])[y]


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the defaults: 100 stages of depth 3, the prior as the initial score
        {"n_estimators": 40, "max_depth": 6, "learning_rate": 0.3, "subsample": 0.7},
        {"n_estimators": 20, "init": "zero", "max_leaf_nodes": 5},
    ],
)
def test_compiled_answers_equal_scikit_learns_exactly(settings: dict[str, Any]) -> None:
    x, y = _data()
    model = GradientBoostingClassifier(random_state=0, **settings).fit(x[:1000], y[:1000])
    compiled = compile_boosting(model)
    assert compiled is not None
    rng = np.random.default_rng(1)
    wild = rng.normal(scale=50, size=(500, x.shape[1]))  # far outside the training range
    for rows in (x[1000:], wild, x[1000:1001]):
        assert compiled.answers(rows) == answers(model, rows)


def test_values_scikit_learn_refuses_are_left_to_it() -> None:
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=10).fit(x, y)
    compiled = compile_boosting(model)
    assert compiled is not None
    for bad in (np.nan, np.inf, 1e300):  # 1e300 is infinite as float32
        rows = x[:3].copy()
        rows[1, 2] = bad
        assert compiled.answers(rows) is None
        with pytest.raises(ValueError), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # its own float32 cast warns
            answers(model, rows)


@pytest.mark.parametrize(
    "model",
    [
        GradientBoostingClassifier(n_estimators=10),  # three classes
        GradientBoostingClassifier(n_estimators=10, loss="exponential"),
        GradientBoostingClassifier(n_estimators=10, init=LogisticRegression()),
        GradientBoostingClassifier(n_estimators=10, init=DummyClassifier(strategy="stratified")),
        RandomForestClassifier(n_estimators=5),
    ],
)
def test_only_binary_log_loss_boosting_with_a_constant_start_is_compiled(model: Any) -> None:
    three = isinstance(model, GradientBoostingClassifier) and model.loss == "log_loss"
    three = three and model.init is None
    x, y = _data(classes=3 if three else 2)
    assert compile_boosting(model.fit(x, y)) is None
