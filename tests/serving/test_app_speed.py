"""The app's fast paths: micro-batching of concurrent requests (failures stay per request),
plainly valid records taken without pydantic (the same records pydantic gives), and ONNX
Runtime answering as scikit-learn does."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette now wants httpx2 for its test client
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from loopml.core import Settings
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, DeploymentSpec, Fallback, PredictionLog, create_app
from tests.serving.app_models_slow import SlowCountingClassifier


def _frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(int)
    return frame


@contextmanager
def _serving(settings: Settings, name: str, spec: DeploymentSpec) -> Iterator[TestClient]:
    with Deployments(settings) as deployments:
        deployments.deploy(name, spec)
    with TestClient(create_app(settings, name)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        yield client


def _register(settings: Settings, estimator: Any, data: Any) -> str:
    from loopml.training import fit

    run = fit(estimator, data, target="label", settings=settings, cv=0)
    with ModelRegistry(settings) as registry:
        return registry.register("m", run_id=run.run_id).ref


def test_concurrent_requests_share_calls_and_fail_alone(sqlite_settings: Settings) -> None:
    ref = _register(sqlite_settings, SlowCountingClassifier(), _frame())
    spec = DeploymentSpec.single(ref, fallback=Fallback("constant", value=-1), timeout_ms=10_000)
    url = "/v1/deployments/slow/predict"
    rows = [{"a": float(i) / 10, "b": 0.5} for i in range(15)] + [{"a": 5000.0, "b": 0.0}]
    with _serving(sqlite_settings, "slow", spec) as client:
        SlowCountingClassifier.calls.clear()
        with ThreadPoolExecutor(max_workers=len(rows)) as pool:
            answers = list(pool.map(lambda row: client.post(url, json=row), rows))
        calls = list(SlowCountingClassifier.calls)
    assert all(answer.status_code == 200 for answer in answers)
    found = [answer.json()["predictions"][0] for answer in answers]
    # the bad row fails only its own request, also when it shared a call with others
    assert [item["fallback"] for item in found] == [False] * 15 + [True]
    assert found[-1]["prediction"] == -1 and "the model broke" in found[-1]["fallback_reason"]
    assert sum(item["prediction"] in (0, 1) for item in found[:15]) == 15
    # requests that arrived while a call ran went together in a later call
    assert max(calls) > 1 and len(calls) < len(rows) + 2


def test_plain_records_are_logged_as_pydantic_gives_them(sqlite_settings: Settings) -> None:
    from sklearn.linear_model import LogisticRegression

    ref = _register(sqlite_settings, LogisticRegression(), _frame())
    url = "/v1/deployments/plain/predict"
    with _serving(sqlite_settings, "plain", DeploymentSpec.single(ref)) as client:
        sent = [{"a": 2, "b": 0.25, "note": "x"}, {"b": -1, "a": -3.5}, {"a": True, "b": 1.0}]
        answer = client.post(url, json=sent)
        assert answer.status_code == 200, answer.text
        log: PredictionLog = client.app.state.prediction_log  # type: ignore[attr-defined]
        logged = [log.find(item["prediction_id"]) for item in answer.json()["predictions"]]
        bad = client.post(url, json=[{"a": 1.0, "b": 2.0}, {"a": 1.0, "b": None}])
    inputs = [record.inputs for record in logged if record is not None]
    assert inputs == [
        {"a": 2.0, "b": 0.25, "note": "x"},  # an int for a float field is a float
        {"a": -3.5, "b": -1.0},
        {"a": 1.0, "b": 1.0},  # pydantic's lax float takes a bool
    ]
    assert all(isinstance(value, float) for value in inputs[0].values() if value != "x")
    assert bad.status_code == 422
    [error] = bad.json()["detail"]
    assert error["loc"] == ["body", 1, "b"] and error["expected"] == "float64"


def test_onnx_deployment_answers_as_scikit_learn(sqlite_settings: Settings) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    from sklearn.ensemble import RandomForestClassifier

    from loopml.data import DataCatalog

    with DataCatalog(sqlite_settings) as catalog:
        data = catalog.ingest(_frame(400), name="rf-data").version.ref
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)
    ref = _register(sqlite_settings, forest, data)
    with ModelRegistry(sqlite_settings) as registry:
        registry.export_onnx(ref)
    rows = _frame(60).drop(columns=["label"]).to_dict(orient="records")
    served: dict[str, list[dict[str, Any]]] = {}
    for name, onnx in (("rf-sklearn", False), ("rf-onnx", True)):
        with _serving(sqlite_settings, name, DeploymentSpec.single(ref, onnx=onnx)) as client:
            many = client.post(f"/v1/deployments/{name}/predict", json=rows)
            one = client.post(f"/v1/deployments/{name}/predict", json=rows[0])
            assert many.status_code == 200 and one.status_code == 200, many.text
            served[name] = many.json()["predictions"]
            assert one.json()["predictions"][0]["prediction"] == served[name][0]["prediction"]
    with ModelRegistry(sqlite_settings) as registry:
        model = registry.load(ref)
    # a forest's label comes from the same call as its probabilities: still predict()'s
    expected = model.predict(pd.DataFrame(rows)).tolist()
    assert [item["prediction"] for item in served["rf-sklearn"]] == expected
    for ours, theirs in zip(served["rf-onnx"], served["rf-sklearn"], strict=True):
        assert ours["prediction"] == theirs["prediction"]
        assert set(ours["probabilities"]) == set(theirs["probabilities"]) == {"0", "1"}
        for label, p in theirs["probabilities"].items():
            assert ours["probabilities"][label] == pytest.approx(p, abs=1e-5)


def test_a_compiled_gradient_boosting_version_answers_as_scikit_learn(
    sqlite_settings: Settings,
) -> None:
    """Served from the registry's compiled form: a lone small request on the event loop,
    a larger one in a worker thread, both as scikit-learn answers; a value scikit-learn
    refuses gets the fallback, with a reason that names the field."""
    from sklearn.ensemble import GradientBoostingClassifier

    frame = _frame(300)
    ref = _register(sqlite_settings, GradientBoostingClassifier(n_estimators=20), frame)
    with ModelRegistry(sqlite_settings) as registry:
        assert "compiled" in registry.get(ref).extra
        model = registry.load(ref)
    spec = DeploymentSpec.single(ref, fallback=Fallback("constant", value=-1))
    url = "/v1/deployments/gb/predict"
    features = frame.drop(columns="label")
    with _serving(sqlite_settings, "gb", spec) as client:
        for rows in (features.head(1), features.head(5), features.head(40)):
            answer = client.post(url, json=rows.to_dict("records"))
            assert answer.status_code == 200, answer.text
            got = answer.json()["predictions"]
            assert [a["prediction"] for a in got] == model.predict(rows).tolist()
            expected = model.predict_proba(rows).tolist()
            assert [[a["probabilities"][c] for c in ("0", "1")] for a in got] == expected
        refused = client.post(url, json={"a": 1e39, "b": 0.0})  # infinite as float32
        assert refused.status_code == 200, refused.text
        [fallback] = refused.json()["predictions"]
        assert fallback["prediction"] == -1 and fallback["fallback"] is True
        assert "input 'a' is 1e+39" in fallback["fallback_reason"]
