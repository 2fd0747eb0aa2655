"""The monitor service on real prediction logs and real feedback: windows by time and by
count, incremental passes that read only new segments, late labels, operations."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.monitoring import Monitor, MonitorReport, parse_window
from loopml.serving import Feedback, FeedbackLabel
from loopml.store import open_store, schema
from tests.monitoring.monitored import DEPLOYMENT, HOUR, T0, World, features, make_world, truth


@pytest.fixture
def world(settings: Settings) -> World:
    return make_world(settings)


def _report(settings: Settings, window: str = "1h", **kwargs: int) -> MonitorReport:
    with Monitor(settings) as monitor:
        return monitor.report(DEPLOYMENT, window, **kwargs)


Key = tuple[str, tuple[tuple[str, str], ...]]


def _samples(report: MonitorReport) -> dict[Key, float]:
    samples = {_key(s.name, **s.labels): s.value for s in report.samples()}
    assert len(samples) == len(report.samples())  # no series twice
    return samples


def _key(name: str, **labels: str) -> Key:
    """A sample's name and labels (``deployment`` added) as a dictionary key."""
    return name, tuple(sorted({"deployment": DEPLOYMENT, **labels}.items()))


def test_parse_window_specs() -> None:
    assert parse_window("1h").size_ms == HOUR
    assert parse_window(" 15m ").text == "15m"
    assert parse_window("10000rows").rows == 10_000
    assert parse_window("500row").text == "500rows"
    for bad in ("", "1x", "h", "0h", "-1h", "0rows", "400d"):
        with pytest.raises(ValidationError, match="window"):
            parse_window(bad)


def test_time_windows_operations_and_samples(world: World) -> None:
    # three hours of traffic: latencies 1..100 ms, every 20th answer by a fallback
    for hour in range(3):
        frame = features(400, seed=hour)
        stamps = [T0 + hour * HOUR + i * 9_000 for i in range(400)]
        world.log(frame.iloc[:380], stamps[:380], latency_ms=1.0 + hour)
        world.log(frame.iloc[380:], stamps[380:], latency_ms=100.0, fallback=True)
    report = _report(world.settings)
    assert [w.index for w in report.windows] == [T0 // HOUR + h for h in range(3)]
    assert [w.rows for w in report.windows] == [400, 400, 400]
    assert [w.start_ms for w in report.windows] == [T0 + h * HOUR for h in range(3)]
    assert all(w.complete for w in report.windows[:2])
    current = report.windows[-1].version("churn@1")
    assert current is not None and current.rows == 400 and current.fallbacks == 20
    assert current.error_rate == pytest.approx(0.05) and current.fallback_rate == 0.05
    exact = np.quantile([3.0] * 380 + [100.0] * 20, [0.5, 0.99])
    assert current.latency_ms["0.5"] == pytest.approx(exact[0], rel=0.03)
    assert current.latency_ms["0.99"] == pytest.approx(exact[1], rel=0.03)
    samples = _samples(report)
    v1 = {"model_version": "churn@1"}
    assert samples[_key("loopml_window_rows", **v1)] == 400
    assert samples[_key("loopml_error_rate", **v1)] == pytest.approx(0.05)
    assert samples[_key("loopml_fallback_rate", **v1)] == pytest.approx(0.05)
    p95 = _key("loopml_latency_ms", **v1, quantile="0.95")
    assert samples[p95] == pytest.approx(3.0, rel=0.03)
    assert samples[_key("loopml_label_coverage", **v1)] == 0
    # prediction drift: the first complete window is the reference; same traffic, small PSI
    assert 0 <= samples[_key("loopml_prediction_drift_score", statistic="psi")] < 0.1
    assert current.prediction_reference == T0 // HOUR


def test_passes_read_only_new_segments_and_match_a_fresh_pass(world: World) -> None:
    world.log(features(700, seed=1), [T0 + i * 6_000 for i in range(700)])  # 70 min
    first = _report(world.settings)
    assert (first.rows_read, first.segments_read, first.rows_total) == (700, 1, 700)
    again = _report(world.settings)
    assert (again.rows_read, again.segments_read) == (0, 0)
    world.log(features(300, seed=2), [T0 + HOUR + 600_000 + i * 1_000 for i in range(300)])
    world.log(features(50, seed=3), [T0 + 2 * HOUR + i for i in range(50)])
    later = _report(world.settings)
    assert (later.rows_read, later.segments_read, later.rows_total) == (350, 2, 1050)
    assert [w.rows for w in later.windows] == [600, 400, 50]
    # "60m" is the same size kept as a separate state: one pass over the whole log
    fresh = _report(world.settings, "60m")
    assert fresh.rows_read == 1050
    assert [w.to_dict() for w in fresh.windows] == [w.to_dict() for w in later.windows]


def test_count_windows(world: World) -> None:
    world.log(features(400, seed=1), [T0 + i for i in range(400)])
    world.log(features(200, seed=2), [T0 + 1000 + i for i in range(200)])
    report = _report(world.settings, "250rows")
    assert report.window == "250rows"
    assert [(w.index, w.rows, w.complete) for w in report.windows] == [
        (0, 250, True),
        (1, 250, True),
        (2, 100, False),
    ]
    assert report.windows[0].start_ms == T0 and report.windows[0].end_ms == T0 + 249
    world.log(features(200, seed=3), [T0 + 5000 + i for i in range(200)])
    report = _report(world.settings, "250rows")
    assert report.rows_read == 200
    assert [(w.index, w.rows) for w in report.windows] == [(0, 250), (1, 250), (2, 250), (3, 50)]


def test_late_labels_update_earlier_windows(world: World) -> None:
    early, late = features(300, seed=1), features(300, seed=2)
    early_ids = world.log(early, [T0 + i * 10_000 for i in range(300)])  # hour 0
    late_ids = world.log(late, [T0 + HOUR + i * 10_000 for i in range(300)])  # hour 1
    report = _report(world.settings)
    assert all(v.labelled == 0 for w in report.windows for v in w.versions)
    # labels for half the first hour's predictions arrive an hour later
    assert world.label(early_ids[:150], truth(early)[:150]) == 150
    report = _report(world.settings)
    assert report.labels_read == 150 and report.rows_read == 0
    first = report.windows[0].version("churn@1")
    assert first is not None and first.labelled == 150
    assert first.label_coverage == pytest.approx(0.5)
    assert first.performance["accuracy"] > 0.9 and first.performance["roc_auc"] > 0.9
    assert set(first.performance) == {"accuracy", "f1", "roc_auc", "log_loss"}
    samples = _samples(report)
    v1 = {"model_version": "churn@1"}
    accuracy = _key("loopml_model_performance", **v1, metric="accuracy")
    assert samples[accuracy] == first.performance["accuracy"]
    assert samples[_key("loopml_labelled_rows", **v1)] == 150
    assert samples[_key("loopml_label_coverage", **v1)] == pytest.approx(0.5)
    # corrections: the same predictions labelled again, all wrong; the newest label counts
    wrong = 1 - truth(early)[:150]
    world.label(early_ids[:150], wrong)
    world.label(late_ids[:30], truth(late)[:30])
    report = _report(world.settings)
    first = report.windows[0].version("churn@1")
    assert first is not None and first.labelled == 150 and first.performance["accuracy"] < 0.1
    second = report.windows[1].version("churn@1")
    assert second is not None and second.labelled == 30
    newest = _samples(report)[_key("loopml_labelled_rows", **v1)]
    assert newest == 30  # from the newest window with labels


def test_a_running_monitor_applies_the_labels_it_reads_again_once(world: World) -> None:
    frame = features(300, seed=1)
    ids = world.log(frame, [T0 + i * 10_000 for i in range(300)])
    right = truth(frame)
    expected = right.copy()
    with Monitor(world.settings) as monitor:
        monitor.report(DEPLOYMENT, "1h")
        # labels in three calls within seconds, each within the overlap the next pass
        # looks at again; the last call corrects ten of the first call's labels
        world.label(ids[:100], right[:100])
        monitor.report(DEPLOYMENT, "1h")
        world.label(ids[100:200], right[100:200])
        monitor.report(DEPLOYMENT, "1h")
        world.label(ids[:10], 1 - right[:10])
        expected[:10] = 1 - right[:10]
        kept = monitor.report(DEPLOYMENT, "1h")
        # the first call's labels were applied and nothing joined them: not read again
        assert kept.labels_read == 110
        # a label committed late by another writer, stamped inside the overlap
        store = open_store(world.settings.db_url, create=False)
        try:
            late = int(max(r.ts_ms for r in _labels(world)) - 1_000)
            store.transact(
                lambda conn: conn.execute(
                    schema.feedback.insert().values(
                        prediction_id=ids[250],
                        deployment=DEPLOYMENT,
                        label=json.dumps(int(1 - right[250])),
                        source="late",
                        ts_ms=late,
                    )
                )
            )
        finally:
            store.close()
        expected[250] = 1 - right[250]
        kept = monitor.report(DEPLOYMENT, "1h")
    # the windows are those of one fresh pass over every label
    fresh = _report(world.settings, "60m")
    assert [w.to_dict() for w in fresh.windows] == [w.to_dict() for w in kept.windows]
    version = kept.windows[0].version("churn@1")
    assert version is not None and version.labelled == 201
    labelled = np.r_[0:200, 250]
    predicted = world.model.predict(frame.iloc[labelled])
    assert version.performance["accuracy"] == pytest.approx(
        float(np.mean(predicted == expected[labelled]))
    )


def _labels(world: World) -> list[FeedbackLabel]:
    with Feedback(world.settings) as feedback:
        return feedback.labels(DEPLOYMENT)


def test_concurrent_passes_count_each_row_once(world: World) -> None:
    for part in range(4):
        world.log(features(100, seed=part), [T0 + part * 1000 + i for i in range(100)])
    reports: list[MonitorReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(_report(world.settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.rows_read for r in reports) == 400
    assert _report(world.settings).windows[0].rows == 400


def test_stored_reports_latest_and_history(world: World) -> None:
    world.log(features(50, seed=1), T0)
    first = _report(world.settings)
    second = _report(world.settings, "10rows")
    with Monitor(world.settings) as monitor:
        latest = monitor.latest(DEPLOYMENT)
        assert latest is not None and latest.id == second.id
        assert latest.to_dict() == second.to_dict()
        hourly = monitor.latest(DEPLOYMENT, window="1h")
        assert hourly is not None and hourly.to_dict() == first.to_dict()
        assert [r.id for r in monitor.history(DEPLOYMENT)] == [second.id, first.id]
        assert monitor.latest("other") is None


def test_bad_input(world: World) -> None:
    with Monitor(world.settings) as monitor:
        with pytest.raises(NotFoundError, match="no deployment 'nope'"):
            monitor.report("nope")
        with pytest.raises(ValidationError, match="'2 hours'"):
            monitor.report(DEPLOYMENT, "2 hours")
        with pytest.raises(ValidationError, match="history"):
            monitor.report(DEPLOYMENT, history=0)
    empty = _report(world.settings)
    assert empty.windows == [] and empty.samples() == []


def test_fallback_answers_of_another_type_and_rows_without_prediction(world: World) -> None:
    from loopml.serving import PredictionLog, PredictionRecord, new_prediction_id

    ids = world.log(features(60, seed=4), T0)
    odd = [
        PredictionRecord(
            new_prediction_id(),
            T0,
            DEPLOYMENT,
            "churn@1",
            {"a": 0.1, "b": 0.2},
            {"prediction": "unknown"},
            900.0,
            fallback=True,
        )
        for _ in range(10)
    ] + [PredictionRecord(new_prediction_id(), T0, DEPLOYMENT, "churn@1", {"a": 0.1}, None, 5.0)]
    with PredictionLog(world.settings) as log:
        for future in log.append_many(odd):
            future.result()
    world.label(ids[:20], [1] * 20)
    world.label([odd[0].prediction_id], [1])  # a fallback's label does not score the model
    [window] = _report(world.settings).windows
    version = window.version("churn@1")
    assert version is not None and version.rows == 71
    assert (version.fallbacks, version.errors, version.labelled) == (10, 11, 20)
    assert version.label_coverage == pytest.approx(20 / 60)  # of the model's own answers
