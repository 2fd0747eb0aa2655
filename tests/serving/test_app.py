"""The REST app: predict one and many, 422s, readiness, metrics, A/B, shadow, fallback,
and a deployment change picked up while serving."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
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
from tests.serving.app_models import MoodyClassifier

URL = "/v1/deployments/churn-api/predict"
ROW = {"a": 0.5, "b": -0.2}


@pytest.fixture
def models(sqlite_settings: Settings) -> Settings:
    """``churn@1`` (logistic regression) and ``churn@2`` (a moody one), from quick fits."""
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = (x[:, 0] > 0).astype(int)
    with ModelRegistry(sqlite_settings) as registry:
        for estimator in (LogisticRegression(), MoodyClassifier()):
            run = fit(estimator, frame, target="label", settings=sqlite_settings, cv=0)
            registry.register("churn", run_id=run.run_id)
    return sqlite_settings


def _deploy(settings: Settings, spec: DeploymentSpec) -> None:
    with Deployments(settings) as deployments:
        deployments.deploy("churn-api", spec)


def _log(client: TestClient) -> PredictionLog:
    log: PredictionLog = client.app.state.prediction_log  # type: ignore[attr-defined]
    return log


def _ready(client: TestClient) -> TestClient:
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.05)
    return client


@pytest.fixture
def serve(models: Settings) -> Iterator[Any]:
    clients: list[TestClient] = []

    def start(spec: DeploymentSpec) -> TestClient:
        _deploy(models, spec)
        client = TestClient(create_app(models, "churn-api"))
        clients.append(client.__enter__())
        return _ready(client)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def test_predict_one_and_many_and_log(serve: Any, models: Settings) -> None:
    client = serve(DeploymentSpec.single("churn@1"))
    one = client.post(URL, json=ROW)
    assert one.status_code == 200, one.text
    [answer] = one.json()["predictions"]
    assert answer["model_version"] == "churn@1" and answer["fallback"] is False
    assert answer["prediction"] == 1 and len(answer["prediction_id"]) == 32
    assert set(answer["probabilities"]) == {"0", "1"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    many = client.post(URL, json=[ROW, {"a": -3.0, "b": 1}, {"a": 2, "b": 0.0, "extra": "x"}])
    assert [p["prediction"] for p in many.json()["predictions"]] == [1, 0, 1]
    found = _log(client).find(answer["prediction_id"])
    assert found is not None and found.model_version == "churn@1"
    assert found.inputs == ROW and found.output["prediction"] == 1


def test_422_names_the_field_and_type_and_404(serve: Any) -> None:
    client = serve(DeploymentSpec.single("churn@1"))
    missing = client.post(URL, json={"a": 1.0})
    assert missing.status_code == 422
    [error] = missing.json()["detail"]
    assert error["loc"] == ["body", "b"] and error["type"] == "missing"
    assert error["expected"] == "float64"
    wrong = client.post(URL, json=[ROW, {"a": "lots", "b": 1.0}])
    assert wrong.status_code == 422
    [error] = wrong.json()["detail"]
    assert error["loc"] == ["body", 1, "a"] and "number" in error["msg"]
    assert error["expected"] == "float64"
    assert client.post(URL, content=b"{nope").status_code == 422
    unknown = client.post("/v1/deployments/other/predict", json=ROW)
    assert unknown.status_code == 404 and "other" in unknown.json()["detail"]


def test_readyz_healthz_metrics_openapi(models: Settings) -> None:
    app = create_app(models, "churn-api")
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503  # nothing deployed yet
        assert client.post(URL, json=ROW).status_code == 503
        _deploy(models, DeploymentSpec.single("churn@1"))
        _ready(client)
        assert client.post(URL, json=ROW).status_code == 200
        client.post(URL, json={"a": 1})
        text = client.get("/metrics").text
        assert 'loopml_requests_total{deployment="churn-api",status="200"} 1.0' in text
        assert 'loopml_requests_total{deployment="churn-api",status="422"} 1.0' in text
        assert (
            'loopml_predictions_total{deployment="churn-api",model_version="churn@1"} 1.0' in text
        )
        assert "loopml_request_latency_seconds_bucket" in text
        schema = client.get("/openapi.json").json()
        body = schema["paths"][URL.replace("churn-api", "{name}")]["post"]["requestBody"]
        record = body["content"]["application/json"]["schema"]["anyOf"][0]
        assert record["required"] == ["a", "b"]


def test_ab_is_sticky_by_key(serve: Any) -> None:
    client = serve(DeploymentSpec.ab({"churn@1": 0.5, "churn@2": 0.5}, sticky_key="customer"))
    seen: dict[str, set[str]] = {}
    for i in range(20):
        for _ in range(2):
            key = f"c{i}"
            answer = client.post(URL, json={**ROW, "customer": key}).json()["predictions"][0]
            seen.setdefault(key, set()).add(answer["model_version"])
    assert all(len(versions) == 1 for versions in seen.values())
    assert set().union(*seen.values()) == {"churn@1", "churn@2"}


def test_shadow_scores_and_logs_both(serve: Any, models: Settings) -> None:
    client = serve(DeploymentSpec.shadow_of("churn@1", "churn@2"))
    answer = client.post(URL, json=ROW).json()["predictions"][0]
    assert answer["model_version"] == "churn@1"
    records = _log(client).tail("churn-api", n=10)
    assert sorted((r.model_version, r.shadow) for r in records) == [
        ("churn@1", False),
        ("churn@2", True),
    ]


def test_fallbacks_on_error_and_timeout(serve: Any) -> None:
    spec = DeploymentSpec.single("churn@2", fallback=Fallback("constant", value=0), timeout_ms=200)
    client = serve(spec)
    broken = client.post(URL, json={"a": 5000.0, "b": 0.0}).json()["predictions"][0]
    assert broken["fallback"] is True and broken["prediction"] == 0
    assert broken["model_version"] == "churn@2" and "the model broke" in broken["fallback_reason"]
    slow = client.post(URL, json={"a": -5000.0, "b": 0.0}).json()["predictions"][0]
    assert slow["fallback"] is True and slow["fallback_reason"] == "timeout"
    assert client.post(URL, json=ROW).json()["predictions"][0]["fallback"] is False
    text = client.get("/metrics").text
    assert 'loopml_fallbacks_total{deployment="churn-api",model_version="churn@2"} 2.0' in text
    assert 'loopml_errors_total{deployment="churn-api",model_version="churn@2"} 2.0' in text


def test_fallback_version_and_no_fallback(serve: Any, models: Settings) -> None:
    client = serve(DeploymentSpec.single("churn@2", fallback=Fallback("version", "churn@1")))
    answer = client.post(URL, json={"a": 5000.0, "b": 0.0}).json()["predictions"][0]
    assert answer["fallback"] is True and answer["answered_by"] == "churn@1"
    assert answer["prediction"] == 1
    logged = _log(client).find(answer["prediction_id"])
    assert logged is not None and logged.fallback
    assert logged.output["answered_by"] == "churn@1"
    assert "the model broke" in logged.output["fallback_reason"]
    _deploy(models, DeploymentSpec.single("churn@2"))
    deadline = time.monotonic() + 3
    while client.get("/readyz").json().get("revision") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    failed = client.post(URL, json={"a": 5000.0, "b": 0.0})
    assert failed.status_code == 503
    assert "no fallback" in failed.json()["detail"] and "the model broke" in failed.json()["detail"]


def test_deployment_change_is_picked_up_within_a_second(serve: Any, models: Settings) -> None:
    client = serve(DeploymentSpec.single("churn@1"))
    assert client.post(URL, json=ROW).json()["predictions"][0]["model_version"] == "churn@1"
    _deploy(models, DeploymentSpec.single("churn@2"))
    changed = time.monotonic()
    while True:
        answer = client.post(URL, json=ROW)
        assert answer.status_code == 200  # no gap while switching
        if answer.json()["predictions"][0]["model_version"] == "churn@2":
            break
        assert time.monotonic() - changed < 1.5
        time.sleep(0.02)


def test_feedback_for_served_predictions_reports_unknown_ids(serve: Any) -> None:
    client = serve(DeploymentSpec.single("churn@1"))
    [answer] = client.post(URL, json=ROW).json()["predictions"]
    feedback_url = URL.replace("/predict", "/feedback")
    done = client.post(
        feedback_url,
        json=[
            {"prediction_id": answer["prediction_id"], "label": 1},
            {"prediction_id": "0" * 32, "label": 0},
        ],
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"accepted": 1, "unknown": ["0" * 32]}
    assert client.post(feedback_url, json={"label": 1}).status_code == 422


def test_a_frozen_collector_still_frees_replaced_versions(
    models: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``freeze_gc`` (what ``loopml serve`` runs with) freezes what the process holds once
    the first version is loaded; that version is still freed when it is replaced."""
    import gc
    import weakref

    from loopml.serving import _app

    loaded: list[weakref.ref[Any]] = []
    real = _app.load_state

    def load_and_watch(*args: Any) -> Any:
        state = real(*args)
        loaded.extend(weakref.ref(model) for model in state.models.values())
        return state

    monkeypatch.setattr(_app, "load_state", load_and_watch)
    _deploy(models, DeploymentSpec.single("churn@1"))
    try:
        with TestClient(create_app(models, "churn-api", freeze_gc=True)) as client:
            _ready(client)
            assert gc.get_freeze_count() > 0
            first = loaded[0]
            _deploy(models, DeploymentSpec.single("churn@2"))
            deadline = time.monotonic() + 10
            while client.get("/readyz").json().get("revision") != 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert client.post(URL, json=ROW).json()["predictions"][0]["model_version"] == "churn@2"
            deadline = time.monotonic() + 10  # the old state goes when its last user does
            while first() is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert first() is None  # freed by reference counting: no collection needed
    finally:
        gc.unfreeze()


def test_the_app_seals_its_log_as_often_as_asked(models: Settings) -> None:
    """``segment_interval_s`` (``loopml serve --segment-interval``) reaches the app's log."""
    _deploy(models, DeploymentSpec.single("churn@1"))
    with TestClient(create_app(models, "churn-api", segment_interval_s=0.3)) as client:
        assert _log(_ready(client)).segment_interval_s == 0.3
        assert client.post(URL, json=ROW).status_code == 200
