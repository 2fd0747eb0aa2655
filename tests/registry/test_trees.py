"""GradientBoosting compiled to flat arrays: the same answers as scikit-learn, bit for bit,
or no compiled form at all; made at registration and served without scikit-learn."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from loopml.core import Settings, ValidationError
from loopml.registry import ModelRegistry
from loopml.registry._trees import CompiledBoosting, compile_boosting

COLUMNS = [f"x{i}" for i in range(8)]


def _data(classes: int = 2, rows: int = 1500) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = make_classification(
        n_samples=rows, n_features=8, n_informative=5, n_classes=classes, random_state=4
    )
    return x, np.array(["no", "yes", "maybe"])[y]


def _same(compiled: CompiledBoosting, model: Any, rows: np.ndarray[Any, Any]) -> bool:
    labels, proba = compiled.scores(rows)
    want = model.predict_proba(rows)
    return labels == model.predict(rows).tolist() and np.array_equal(proba, want)


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
    compiled = compile_boosting(model, COLUMNS)
    assert compiled is not None
    rng = np.random.default_rng(1)
    wild = rng.normal(scale=50, size=(500, x.shape[1]))  # far outside the training range
    for rows in (x[1000:], wild, x[1000:1001]):
        assert _same(compiled, model, rows)


def test_the_bytes_read_back_answer_the_same() -> None:
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(x, y)
    compiled = compile_boosting(model, COLUMNS)
    assert compiled is not None
    again = CompiledBoosting.from_bytes(compiled.to_bytes())
    assert (again.classes, again.columns) == (["no", "yes"], COLUMNS)
    assert _same(again, model, x[:300])


def test_bytes_that_are_not_a_compiled_model_are_refused() -> None:
    with pytest.raises(ValidationError, match="not a compiled GradientBoosting model"):
        CompiledBoosting.from_bytes(b"not an npz at all")


def test_a_value_that_is_not_finite_is_refused_naming_its_column() -> None:
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=10).fit(x, y)
    compiled = compile_boosting(model, COLUMNS)
    assert compiled is not None
    for bad, said in ((np.nan, "missing"), (np.inf, "inf"), (1e300, "1e+300")):
        rows = x[:3].copy()
        rows[1, 2] = bad
        with pytest.raises(ValueError, match=f"input .x2. is {re.escape(said)}"):
            compiled.scores(rows)
        with pytest.raises(ValueError), warnings.catch_warnings():  # scikit-learn refuses too
            warnings.simplefilter("ignore", RuntimeWarning)  # its own float32 cast warns
            model.predict_proba(rows)


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
    assert compile_boosting(model.fit(x, y), COLUMNS) is None


def test_columns_that_are_not_the_models_features_are_not_compiled() -> None:
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=5).fit(pd.DataFrame(x, columns=COLUMNS), y)
    assert compile_boosting(model, COLUMNS) is not None
    assert compile_boosting(model, list(reversed(COLUMNS))) is None
    assert compile_boosting(model, COLUMNS[:-1]) is None


def _register(settings: Settings, estimator: Any, frame: pd.DataFrame, name: str) -> str:
    from loopml.training import fit

    run = fit(estimator, frame, target="label", settings=settings, cv=0)
    with ModelRegistry(settings) as registry:
        return registry.register(name, run_id=run.run_id).ref


def _frame(integers: bool = False) -> pd.DataFrame:
    x, y = _data(rows=400)
    frame = pd.DataFrame(x[:, :4], columns=COLUMNS[:4])
    if integers:
        frame["x3"] = (frame["x3"] * 10).round().astype("int64")
    frame["label"] = y
    return frame


def test_registration_compiles_a_gradient_boosting_classifier(settings: Settings) -> None:
    frame = _frame()
    ref = _register(settings, GradientBoostingClassifier(n_estimators=20), frame, "gb")
    other = _register(settings, RandomForestClassifier(n_estimators=3), frame, "rf")
    ints = _register(settings, GradientBoostingClassifier(n_estimators=5), _frame(True), "gbi")
    with ModelRegistry(settings) as registry:
        record = registry.get(ref).extra["compiled"]
        assert record["kind"] == "gradient_boosting"
        compiled = registry.load_compiled(ref)
        model = registry.load(ref)
        assert "compiled" not in registry.get(other).extra
        assert "compiled" not in registry.get(ints).extra  # an int input: not all floats
    features = frame.drop(columns="label")
    labels, proba = compiled.scores(features.to_numpy())
    assert labels == model.predict(features).tolist()
    assert np.array_equal(proba, model.predict_proba(features))


SERVE_WITHOUT_SKLEARN = """
import sys
from loopml.core import load_settings
from loopml.serving import Deployments
from loopml.serving._runtime import load_state

settings = load_settings(project_dir=sys.argv[1], environ={})
with Deployments(settings) as deployments:
    deployment = deployments.get("gb")
state = load_state(settings, deployment)
answer = state.models[sys.argv[2]].predict([{"x0": 0.5, "x1": -1.0, "x2": 2.0, "x3": 0.0}])
print(answer[0]["prediction"], "sklearn" in sys.modules)
"""


def test_a_compiled_version_is_served_without_importing_scikit_learn(
    sqlite_settings: Settings,
) -> None:
    from loopml.serving import Deployments, DeploymentSpec

    frame = _frame()
    ref = _register(sqlite_settings, GradientBoostingClassifier(n_estimators=20), frame, "gb")
    with Deployments(sqlite_settings) as deployments:
        deployments.deploy("gb", DeploymentSpec.single(ref))
    with ModelRegistry(sqlite_settings) as registry:
        model = registry.load(ref)
    row = pd.DataFrame([{"x0": 0.5, "x1": -1.0, "x2": 2.0, "x3": 0.0}])
    project = str(sqlite_settings.project_dir)
    found = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SKLEARN, project, ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found == [str(model.predict(row)[0]), "False"]


def test_a_compiled_form_that_answers_differently_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model is one compile_boosting covers; only the check against scikit-learn's
    answers can refuse it (here, every raw score one ulp off)."""
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=10).fit(x, y)
    assert compile_boosting(model, COLUMNS) is not None
    exact = CompiledBoosting.raw
    monkeypatch.setattr(
        CompiledBoosting, "raw", lambda self, x32: np.nextafter(exact(self, x32), np.inf)
    )
    assert compile_boosting(model, COLUMNS) is None


def test_reading_back_checks_the_stored_answers() -> None:
    x, y = _data()
    model = GradientBoostingClassifier(n_estimators=10).fit(x, y)
    compiled = compile_boosting(model, COLUMNS)
    assert compiled is not None
    with np.load(io.BytesIO(compiled.to_bytes())) as found:
        arrays = dict(found)
    arrays["value"] = arrays["value"] * 1.5  # other trees than the ones that answered
    changed = io.BytesIO()
    np.savez(changed, allow_pickle=False, **arrays)
    with pytest.raises(ValidationError, match="does not give scikit-learn's answers"):
        CompiledBoosting.from_bytes(changed.getvalue())
    del arrays["probes"]
    missing = io.BytesIO()
    np.savez(missing, allow_pickle=False, **arrays)
    with pytest.raises(ValidationError, match="not a compiled GradientBoosting model"):
        CompiledBoosting.from_bytes(missing.getvalue())


def test_a_model_registration_cannot_load_is_registered_uncompiled(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiling is an extra: a model whose classes this process cannot import (say) is
    registered as before, and served by scikit-learn where it can be loaded."""
    import joblib

    def unloadable(*_args: Any, **_kwargs: Any) -> Any:
        raise ModuleNotFoundError("No module named 'team_priors'")

    frame = _frame()
    with monkeypatch.context() as patched:
        patched.setattr(joblib, "load", unloadable)
        ref = _register(settings, GradientBoostingClassifier(n_estimators=5), frame, "gb")
    with ModelRegistry(settings) as registry:
        assert "compiled" not in registry.get(ref).extra
        assert registry.load(ref).n_estimators == 5


def test_a_version_without_a_usable_compiled_form_is_served_by_scikit_learn(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An int input: not compiled at registration, compiled when loaded (with scikit-learn
    at hand); a compiled form that does not check out on the server: the model instead."""
    from loopml.serving import Deployments, DeploymentSpec
    from loopml.serving._runtime import load_state

    def state_of(ref: str) -> Any:
        with Deployments(settings) as deployments:
            deployments.deploy("d", DeploymentSpec.single(ref))
            deployment = deployments.get("d")
        return load_state(settings, deployment).models[ref]

    ints = _register(settings, GradientBoostingClassifier(n_estimators=5), _frame(True), "gbi")
    loaded = state_of(ints)
    assert loaded.model is not None and loaded.compiled is not None
    rows = _frame(True).drop(columns="label").head(50)
    answers = loaded.predict(rows.to_dict("records"))
    assert [a["prediction"] for a in answers] == loaded.model.predict(rows).tolist()

    floats = _register(settings, GradientBoostingClassifier(n_estimators=5), _frame(), "gbf")
    assert state_of(floats).model is None  # the compiled form, checked at load

    def differs(_self: Any) -> None:
        raise ValidationError("does not give scikit-learn's answers (for the test)")

    monkeypatch.setattr(CompiledBoosting, "_check", differs)
    assert state_of(floats).model is not None
