"""Tracing a prediction made by the real app back to its version, run, data and commit;
and the read-only view of the prediction log that finds it, journaled or in a segment."""

from __future__ import annotations

import pytest

from loopml.core import NotFoundError, Settings, ValidationError, now_ms
from loopml.data import DataCatalog
from loopml.registry import ModelRegistry
from loopml.serving import (
    Deployments,
    DeploymentSpec,
    Fallback,
    PredictionLog,
    PredictionReader,
    PredictionRecord,
    new_prediction_id,
    trace_prediction,
)
from tests.serving.traced import (
    DEPLOYMENT,
    ROW,
    in_a_segment,
    predict,
    serving,
    train,
    wait_for_revision,
)


def _deploy(settings: Settings, spec: DeploymentSpec) -> None:
    with Deployments(settings) as deployments:
        deployments.deploy(DEPLOYMENT, spec)


def test_a_prediction_traces_to_version_run_data_and_commit(settings: Settings) -> None:
    trained = train(settings)
    with ModelRegistry(settings) as registry:
        registry.set_alias("churn@1", "staging")
        version = registry.get("churn@1")
    _deploy(settings, DeploymentSpec.single("churn@staging"))
    with serving(settings) as client:
        # The app cuts a segment every 2 s: trace at once, and retry should a cut fall
        # between the prediction and the check that it was still only journaled.
        for _ in range(5):
            [answer] = predict(client, ROW)
            journaled = trace_prediction(settings, answer["prediction_id"])
            if not in_a_segment(settings, answer["prediction_id"]):
                break
        else:
            pytest.fail("every prediction was cut into a segment before it could be traced")

    record = journaled.prediction
    assert record.prediction_id == answer["prediction_id"] and record.inputs == ROW
    assert record.deployment == DEPLOYMENT and record.model_version == "churn@1"
    assert record.output["prediction"] == answer["prediction"] and not record.fallback
    assert journaled.deployment_revision == 1 and journaled.answered_by is None
    model = journaled.model
    assert (model.ref, model.flavor, model.artifact) == ("churn@1", "sklearn", version.artifact)
    assert model.aliases_then == ["staging"] and model.aliases_now == ["staging"]
    run = journaled.run
    assert run is not None and run.id == trained.run_id and run.experiment == "churn-exp"
    assert run.status == "FINISHED" and run.params["C"] == "0.5"
    assert run.git_commit == trained.commit and run.git_dirty is True
    assert run.diff_digest is not None and run.diff_digest.startswith("blake3:")
    assert journaled.code_version == trained.commit and journaled.pipeline_run is None
    with DataCatalog(settings) as catalog:
        digest = catalog.get(trained.dataset).digest
    [dataset] = journaled.datasets
    assert (dataset.ref, dataset.digest, dataset.rows) == (trained.dataset, digest, 300)
    assert dataset.split is not None and dataset.split["name"] == "main"

    # the app has closed its log: the record is in a segment now; the alias moved on
    assert in_a_segment(settings, answer["prediction_id"])
    with ModelRegistry(settings) as registry:
        registry.remove_alias("churn", "staging")
    again = trace_prediction(settings, answer["prediction_id"])
    assert again.prediction == record
    assert again.model.aliases_then == ["staging"] and again.model.aliases_now == []
    as_json = again.to_dict()
    assert as_json["run"]["git_commit"] == trained.commit
    assert as_json["datasets"][0]["ref"] == trained.dataset


def test_a_fallback_names_the_revision_and_who_answered(sqlite_settings: Settings) -> None:
    from loopml.training import fit
    from tests.serving.app_models import MoodyClassifier

    s = sqlite_settings
    trained = train(s)
    moody = fit(MoodyClassifier(), trained.dataset, target="label", split="main", settings=s, cv=0)
    with ModelRegistry(s) as registry:
        registry.register("churn", run_id=moody.run_id)  # churn@2
    _deploy(s, DeploymentSpec.single("churn@1"))
    with serving(s) as client:
        [before] = predict(client, ROW)
        _deploy(s, DeploymentSpec.single("churn@2", fallback=Fallback("version", "churn@1")))
        wait_for_revision(client, 2)
        [broken] = predict(client, {**ROW, "a": 5000.0})  # the moody model raises on it
    assert broken["fallback"] is True
    first = trace_prediction(s, before["prediction_id"])
    assert first.deployment_revision == 1 and first.model.ref == "churn@1"
    second = trace_prediction(s, broken["prediction_id"])
    assert second.deployment_revision == 2 and second.prediction.fallback
    assert second.model.ref == "churn@2" and second.answered_by == "churn@1"
    assert second.run is not None and second.run.id == moody.run_id


def test_a_pipeline_trained_model_traces_through_its_pipeline_run(
    sqlite_settings: Settings,
) -> None:
    from tests.training.pipes import training

    s = sqlite_settings
    trained = train(s)
    pipe = training.run({"ref": trained.dataset, "depth": 2}, settings=s)
    assert pipe.status == "succeeded", pipe.error
    step_run = pipe.step("train_tree").tracking_run_id
    assert step_run is not None
    with ModelRegistry(s) as registry:
        registry.register("tree", run_id=step_run)
    _deploy(s, DeploymentSpec.single("tree@1"))
    with serving(s) as client:
        [answer] = predict(client, ROW)
    lineage = trace_prediction(s, answer["prediction_id"])
    assert lineage.model.ref == "tree@1"
    assert lineage.run is not None and lineage.run.id == step_run
    assert lineage.pipeline_run is not None and lineage.pipeline_run["id"] == pipe.id
    assert lineage.pipeline_run["pipeline"] == "training"
    assert [d.ref for d in lineage.datasets] == [trained.dataset]
    assert lineage.code_version == trained.commit


def test_unknown_ids_and_vanished_versions(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    with pytest.raises(NotFoundError, match="no loopml store"):  # reads create nothing
        trace_prediction(s, new_prediction_id())
    orphan = PredictionRecord(new_prediction_id(), now_ms(), "nowhere", "gone@1", {}, 1, 0.1)
    with PredictionLog(s) as log:
        log.append(orphan).result()
    ghost = new_prediction_id()
    with pytest.raises(NotFoundError, match=f"no prediction '{ghost}'"):
        trace_prediction(s, ghost)
    with pytest.raises(ValidationError, match="1-64 characters"):
        trace_prediction(s, " ")
    with pytest.raises(NotFoundError, match="names model version gone@1"):
        trace_prediction(s, orphan.prediction_id)


def test_the_reader_sees_journaled_and_segmented_records_once(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    start = now_ms()
    records = [
        PredictionRecord(new_prediction_id(), start + i, "api", "m@1", {"i": i}, i, 1.0)
        for i in range(5)
    ]
    other = PredictionRecord(new_prediction_id(), start, "other", "m@1", {}, 0, 1.0)
    log = PredictionLog(s, segment_interval_s=3600)
    for future in log.append_many([*records[:3], other]):
        future.result()
    log.close()  # three of "api" in a segment
    with PredictionLog(s, segment_interval_s=3600) as live:
        for future in live.append_many(records[3:]):
            future.result()
        with PredictionReader(s) as reader:
            assert not in_a_segment(s, records[4].prediction_id)  # journaled only
            assert reader.tail("api", 2) == [records[4], records[3]]
            assert reader.tail("api", 100) == records[::-1]
            assert reader.since("api", start + 2) == records[2:]
            assert reader.find(records[4].prediction_id) == records[4]
            assert reader.find(records[0].prediction_id) == records[0]
            assert reader.find(new_prediction_id()) is None
            assert reader.tail("nobody") == []
