"""The monitor on traffic: drifted against undrifted inputs, a regressor's errors, and
predictions and labels that go through the real serving app."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette now wants httpx2 for its test client
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from loopml.core import Settings
from loopml.data import DataCatalog
from loopml.monitoring import Monitor, MonitorReport, render_html
from loopml.registry import ModelRegistry
from loopml.serving import Deployments, DeploymentSpec, PredictionLog, PredictionRecord, create_app
from loopml.serving import new_prediction_id as new_id
from tests.monitoring.monitored import DEPLOYMENT, HOUR, T0, World, features, make_world, truth


@pytest.fixture
def world(sqlite_settings: Settings) -> World:
    return make_world(sqlite_settings)


def _report(settings: Settings, deployment: str = DEPLOYMENT) -> MonitorReport:
    with Monitor(settings) as monitor:
        return monitor.report(deployment, "1h")


def _sample(report: MonitorReport, name: str, **labels: str) -> float:
    wanted = {"deployment": report.deployment, **labels}
    [value] = [s.value for s in report.samples() if s.name == name and s.labels == wanted]
    return value


def test_drifted_traffic_is_flagged_and_calm_traffic_is_not(world: World) -> None:
    world.log(features(2000, seed=1), [T0 + i * 1_500 for i in range(2000)])  # hour 0: calm
    world.log(features(2000, seed=2, shift=1.5), [T0 + HOUR + i * 1_500 for i in range(2000)])
    report = _report(world.settings)
    calm, drifted = (w.version("churn@1") for w in report.windows)
    assert calm is not None and drifted is not None
    assert calm.data_drift is not None and not calm.data_drift.drifted
    assert calm.data_drift.drifted_features == []
    assert drifted.data_drift is not None and drifted.data_drift.drifted_features == ["a"]
    assert set(drifted.data_drift.features) == {"a", "b"}  # inputs only, not the target
    assert _sample(report, "loopml_feature_drifted", feature="a") == 1
    assert _sample(report, "loopml_feature_drifted", feature="b") == 0
    assert _sample(report, "loopml_drift_share") == 0.5
    psi_a = _sample(report, "loopml_feature_drift_score", feature="a", statistic="psi")
    psi_b = _sample(report, "loopml_feature_drift_score", feature="b", statistic="psi")
    assert psi_a > 0.2 > 0.1 > psi_b
    # the drifted inputs move the answers too: prediction drift against hour 0
    assert drifted.prediction_reference == T0 // HOUR
    assert calm.prediction_drift is not None and calm.prediction_drift["psi"] < 0.01
    assert _sample(report, "loopml_prediction_drift_score", statistic="psi") > 0.25
    page = render_html(report)
    assert "a (" in page and "predictions (PSI)" in page


def test_regression_performance(sqlite_settings: Settings) -> None:
    from sklearn.linear_model import LinearRegression

    from loopml.training import fit

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(0, 10, 300)})
    frame["y"] = 3 * frame["x"] + rng.normal(0, 1, 300)
    with DataCatalog(sqlite_settings) as catalog:
        version = catalog.ingest(frame, name="sizes").version
    run = fit(LinearRegression(), version.ref, target="y", settings=sqlite_settings, cv=0)
    with ModelRegistry(sqlite_settings) as registry:
        registry.register("size", run_id=run.run_id)
        model = registry.load("size@1")
    with Deployments(sqlite_settings) as deployments:
        deployments.deploy("size-api", DeploymentSpec.single("size@1"))
    rows = pd.DataFrame({"x": rng.uniform(0, 10, 200)})
    predicted = model.predict(rows)
    records = [
        PredictionRecord(
            new_id(), T0 + i, "size-api", "size@1", {"x": float(x)}, {"prediction": float(p)}, 1.0
        )
        for i, (x, p) in enumerate(zip(rows["x"], predicted, strict=True))
    ]
    with PredictionLog(sqlite_settings) as log:
        for future in log.append_many(records):
            future.result()
    from loopml.serving import Feedback

    errors = np.full(200, 2.0)
    errors[::2] = -2.0  # |error| 2 everywhere: MAE 2 and RMSE 2
    with Feedback(sqlite_settings) as feedback:
        feedback.record(
            [
                {"prediction_id": r.prediction_id, "label": float(p) + e}
                for r, p, e in zip(records, predicted, errors, strict=True)
            ]
        )
    report = _report(sqlite_settings, "size-api")
    [window] = report.windows
    version = window.version("size@1")
    assert version is not None and version.labelled == 200 and version.label_coverage == 1
    assert version.performance == pytest.approx({"mae": 2.0, "rmse": 2.0})
    assert version.data_drift is not None and not version.data_drift.drifted


def test_predictions_and_labels_through_the_app(world: World) -> None:
    frame = features(120, seed=5)
    answers: list[dict[str, object]] = []
    with TestClient(create_app(world.settings, DEPLOYMENT)) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = f"/v1/deployments/{DEPLOYMENT}"
        response = client.post(f"{url}/predict", json=frame.to_dict("records"))
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        labels = truth(frame)
        sent = client.post(
            f"{url}/feedback",
            json=[
                {"prediction_id": a["prediction_id"], "label": int(y)}
                for a, y in zip(answers[:90], labels[:90], strict=True)
            ],
        )
        assert sent.json() == {"accepted": 90, "unknown": []}
    report = _report(world.settings)  # the app's log is in segments once it closed
    assert report.rows_read == 120 and report.labels_read == 90
    current = report.current
    assert current is not None and current.rows == 120
    version = current.version("churn@1")
    assert version is not None and version.labelled == 90
    assert version.label_coverage == pytest.approx(0.75)
    expected = np.mean(
        [a["prediction"] == y for a, y in zip(answers[:90], labels[:90], strict=True)]
    )
    assert version.performance["accuracy"] == pytest.approx(expected)
    assert version.latency_ms["0.5"] > 0
