"""Bad input to fit fails before any run opens, with an error that names the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.data import SplitSpec
from loopml.training import detect_task, fit
from tests.training.helpers import client_for, easy_classification


def _no_runs(settings: Settings) -> bool:
    return len(client_for(settings).search_runs(None)) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": "nope"}, ValidationError, "target column 'nope' is not in dataset toy@1"),
        (
            {"target": "label", "features": ["x1", "ghost"]},
            ValidationError,
            r"feature column\(s\) \['ghost'\] are not in dataset toy@1",
        ),
        ({"target": "label", "split": "holdout"}, NotFoundError, "no stored split named 'holdout'"),
        ({"target": "label", "features": ["label"]}, ValidationError, "also listed in features"),
        ({"target": "label", "task": "clustering"}, ValidationError, "task must be"),
        ({"target": "label", "cv": 1}, ValidationError, "cv must be 0"),
    ],
)
def test_bad_arguments_on_a_dataset(
    shared_settings: Settings, shared_toy: str, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        fit(DecisionTreeClassifier(), shared_toy, settings=shared_settings, **kwargs)
    assert _no_runs(shared_settings)


def test_the_missing_split_error_lists_the_stored_ones(
    shared_settings: Settings, shared_toy: str
) -> None:
    with pytest.raises(NotFoundError, match=r'stored splits: \["main"\]'):
        fit(
            DecisionTreeClassifier(),
            shared_toy,
            target="label",
            split="mian",
            settings=shared_settings,
        )


def test_a_missing_dataset_is_not_found(shared_settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'ghost'"):
        fit(DecisionTreeClassifier(), "ghost@1", target="label", settings=shared_settings)


class _NoFit:
    def predict(self, X: object) -> None:
        return None


@pytest.mark.parametrize(
    ("estimator", "match"),
    [
        (_NoFit(), r"_NoFit has no fit\(\) method"),
        (object(), r"builtins.object has no fit\(\) method"),
        (DecisionTreeClassifier, "not the class DecisionTreeClassifier"),
    ],
)
def test_an_estimator_that_cannot_fit_is_refused(
    shared_settings: Settings, estimator: object, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        fit(estimator, easy_classification(), target="label", settings=shared_settings)
    assert _no_runs(shared_settings)


def test_dataframe_errors(shared_settings: Settings) -> None:
    frame = easy_classification(rows=50)
    tree = DecisionTreeClassifier()
    with pytest.raises(ValidationError, match="target column 'y' is not in the DataFrame"):
        fit(tree, frame, target="y", settings=shared_settings)
    with pytest.raises(ValidationError, match="needs a dataset ref"):
        fit(tree, frame, target="label", split="main", settings=shared_settings)
    with pytest.raises(ValidationError, match="has no part named 'train'"):
        spec = SplitSpec(kind="random", ratios=(0.5, 0.5), names=("a", "b"))
        fit(tree, frame, target="label", split=spec, settings=shared_settings)
    with_null = frame.astype({"label": "float64"})
    with_null.loc[4, "label"] = np.nan
    with pytest.raises(ValidationError, match="target column 'label' has 1 null value"):
        fit(tree, with_null, target="label", settings=shared_settings)
    tiny = frame.head(12).assign(label=[0] * 10 + [1] * 2)
    with pytest.raises(ValidationError, match="cv=5 needs at least 5 rows of every class"):
        spec = SplitSpec(kind="random", ratios=(1.0, 0.0))
        fit(tree, tiny, target="label", split=spec, settings=shared_settings)
    with pytest.raises(ValidationError, match="must be a dataset ref"):
        fit(tree, [1, 2, 3], target="label", settings=shared_settings)  # type: ignore[arg-type]
    assert _no_runs(shared_settings)


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 1, 0], "classification"),
        ([True, False, True], "classification"),
        (["a", "b", "a"], "classification"),
        ([0.0, 1.0, 2.0, 1.0], "classification"),  # whole-number floats, few values
        ([0.5, 1.5, 2.0], "regression"),
        (list(range(100)), "regression"),  # whole numbers, but more than 20 of them
        (list(range(20)), "classification"),
    ],
)
def test_detect_task(values: list, task: str) -> None:
    assert detect_task(pd.Series(values)) == task
