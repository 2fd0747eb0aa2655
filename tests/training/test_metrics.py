"""loopml's metrics equal scikit-learn's, computed with numpy alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from loopml.core import ValidationError
from loopml.training import classification_metrics, regression_metrics


@pytest.mark.parametrize(
    "labels", [[0, 1], [False, True], ["no", "yes"], [3, 7, 9], ["a", "b", "c", "d"]]
)
def test_classification_metrics_match_scikit_learn(labels: list) -> None:
    rng = np.random.default_rng(len(labels))
    classes = np.array(labels, dtype=object if isinstance(labels[0], str) else None)
    for _ in range(5):
        y_true = classes[rng.integers(0, len(classes), 60)]
        y_pred = np.where(rng.random(60) < 0.7, y_true, classes[rng.integers(0, len(classes), 60)])
        proba = rng.random((60, len(classes)))
        proba /= proba.sum(axis=1, keepdims=True)
        ours = classification_metrics(y_true, y_pred, proba, classes=list(classes))
        if len(classes) == 2:
            options: dict = {"average": "binary", "pos_label": classes[-1]}
            auc = sk.roc_auc_score(y_true == classes[-1], proba[:, 1])
        else:
            options = {"average": "macro", "labels": list(classes)}
            auc = sk.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(classes))
        expected = {
            "accuracy": sk.accuracy_score(y_true, y_pred),
            "precision": sk.precision_score(y_true, y_pred, zero_division=0, **options),
            "recall": sk.recall_score(y_true, y_pred, zero_division=0, **options),
            "f1": sk.f1_score(y_true, y_pred, zero_division=0, **options),
            "roc_auc": auc,
            "log_loss": sk.log_loss(y_true, proba, labels=list(classes)),
        }
        assert ours == pytest.approx(expected, abs=1e-12)


def test_binary_scores_the_larger_label_and_takes_1d_probabilities() -> None:
    y_true = np.array(["no", "yes", "yes", "no", "yes"])
    y_pred = np.array(["no", "yes", "no", "no", "yes"])
    result = classification_metrics(y_true, y_pred, np.array([0.1, 0.9, 0.4, 0.3, 0.8]))
    assert result["precision"] == 1.0  # of "yes"
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["roc_auc"] == 1.0
    without = classification_metrics(y_true, y_pred)
    assert set(without) == {"accuracy", "precision", "recall", "f1"}


def test_undefined_values_are_nan_not_errors() -> None:
    one_class = classification_metrics([1, 1, 1], [1, 0, 1], np.array([0.9, 0.2, 0.8]))
    assert math.isnan(one_class["roc_auc"])
    assert math.isfinite(one_class["log_loss"])
    assert math.isnan(regression_metrics([1.0], [2.0])["r2"])
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == 1.0


def test_shape_errors_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="y_true has 2 rows but y_pred has 3"):
        classification_metrics([0, 1], [0, 1, 1])
    with pytest.raises(ValidationError, match="expected \\(2, 3\\)"):
        classification_metrics([0, 1], [0, 2], np.ones((2, 2)) / 2, classes=[0, 1, 2])


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=80) + 5
    y_pred = y_true + rng.normal(scale=0.5, size=80)
    assert regression_metrics(y_true, y_pred) == pytest.approx(
        {
            "mae": sk.mean_absolute_error(y_true, y_pred),
            "rmse": sk.root_mean_squared_error(y_true, y_pred),
            "mape": sk.mean_absolute_percentage_error(y_true, y_pred),
            "r2": sk.r2_score(y_true, y_pred),
        },
        abs=1e-12,
    )
