"""Feedback: labels for logged predictions, unknown ids reported, files, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.core import NotFoundError, PermissionDeniedError, Settings, ValidationError
from loopml.governance import Governance, Identity, Role, list_audit
from loopml.serving import Feedback, PredictionLog, PredictionRecord, new_prediction_id
from loopml.store import open_store


def _log(settings: Settings, deployment: str, n: int) -> list[str]:
    """``n`` predictions of ``deployment`` in the log's segments; their ids."""
    ids = [new_prediction_id() for _ in range(n)]
    with PredictionLog(settings) as log:
        for f in log.append_many(
            PredictionRecord(pid, 1_000 + i, deployment, "toy@1", {"a": i}, i % 2, 1.0)
            for i, pid in enumerate(ids)
        ):
            f.result(10)
    return ids


def _audit(settings: Settings) -> list[dict[str, object]]:
    store = open_store(settings.db_url, create=False)
    try:
        with store.read() as conn:
            rows = list_audit(conn, 100, action="feedback.*")
    finally:
        store.close()
    return [json.loads(row.after) for row in rows]


def test_known_ids_are_stored_unknown_ones_reported(settings: Settings) -> None:
    churn = _log(settings, "churn-api", 5)
    fraud = _log(settings, "fraud-api", 2)
    ghost = new_prediction_id()
    items = [{"prediction_id": pid, "label": 1} for pid in churn[:3]]
    items += [{"prediction_id": fraud[0], "label": {"fraud": True}}]
    items += [{"prediction_id": ghost, "label": 0}, {"prediction_id": ghost, "label": 1}]
    with Feedback(settings) as feedback:
        result = feedback.record(items)
        assert (result.accepted, result.unknown) == (4, [ghost])
        labels = feedback.labels("churn-api")
        assert [(x.prediction_id, x.label, x.source) for x in labels] == [
            (pid, 1, "api") for pid in churn[:3]
        ]
        assert [x.label for x in feedback.labels("fraud-api")] == [{"fraud": True}]
        assert feedback.labels("churn-api", since_ms=labels[0].ts_ms + 60_000) == []

        # a correction is a second entry; every id unknown stores nothing
        feedback.record([{"prediction_id": churn[0], "label": 0}], source="review")
        assert [x.label for x in feedback.labels("churn-api")][-1] == 0
        assert feedback.record([{"prediction_id": ghost, "label": 1}]).accepted == 0

    audit = _audit(settings)  # one entry per call, with counts
    assert [(a["accepted"], a["unknown"]) for a in audit] == [(0, 1), (1, 0), (4, 1)]
    assert audit[-1]["deployments"] == {"churn-api": 3, "fraud-api": 1}


def test_live_records_of_an_open_log_are_found(sqlite_settings: Settings) -> None:
    pid = new_prediction_id()
    with PredictionLog(sqlite_settings, segment_interval_s=3600) as log:
        log.append(PredictionRecord(pid, 1, "live", "toy@1", {}, 1, 1.0)).result(10)
        with Feedback(sqlite_settings) as feedback:
            assert feedback.record([{"prediction_id": pid, "label": 1}]).unknown == [pid]
            assert feedback.record([{"prediction_id": pid, "label": 1}], log=log).accepted == 1


def test_a_large_call_finds_live_and_segment_records_in_one_entry(
    sqlite_settings: Settings,
) -> None:
    in_segments = _log(sqlite_settings, "churn-api", 1500)
    live = [new_prediction_id() for _ in range(1500)]
    with PredictionLog(sqlite_settings, segment_interval_s=3600) as log:
        for f in log.append_many(
            PredictionRecord(pid, 5_000 + i, "churn-api", "toy@2", {"a": i}, 0, 1.0)
            for i, pid in enumerate(live)
        ):
            f.result(10)
        items = [{"prediction_id": pid, "label": 1} for pid in [*in_segments, *live]]
        with Feedback(sqlite_settings) as feedback:
            result = feedback.record(items, log=log)
            assert (result.accepted, result.unknown) == (3000, [])
            assert len(feedback.labels("churn-api")) == 3000
    assert [(a["accepted"], a["deployments"]) for a in _audit(sqlite_settings)] == [
        (3000, {"churn-api": 3000})
    ]


def test_bad_items_are_refused(sqlite_settings: Settings) -> None:
    with Feedback(sqlite_settings) as feedback:
        with pytest.raises(ValidationError, match="no feedback items"):
            feedback.record([])
        with pytest.raises(ValidationError, match="item 1 .*label is missing"):
            feedback.record([{"prediction_id": "a", "label": 1}, {"prediction_id": "b"}])
        with pytest.raises(ValidationError, match="item 0: prediction_id must be"):
            feedback.record([{"prediction_id": 7, "label": 1}])


def test_viewers_may_not_write_feedback(settings: Settings) -> None:
    gov = Governance(settings)
    try:
        root = Identity(name="root", role=Role.ADMIN, via="local")
        gov.add_user("vic", Role.VIEWER, actor=root)
        token = gov.create_token("vic", actor=root).secret
    finally:
        gov.close()
    viewer = dataclasses.replace(settings, auth=True, token=token)
    with Feedback(viewer) as feedback, pytest.raises(PermissionDeniedError):
        feedback.record([{"prediction_id": "x", "label": 1}])


def test_file_import(sqlite_settings: Settings, tmp_path: Path) -> None:
    ids = _log(sqlite_settings, "churn-api", 4)
    ghost = new_prediction_id()
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": [*ids[:2], ghost], "label": [1, 0, 1]}).to_csv(csv, index=False)
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"prediction_id": p, "label": "yes", "x": 1}) for p in ids[2:]) + "\n"
    )
    with Feedback(sqlite_settings) as feedback:
        result = feedback.import_file(csv)
        assert (result.accepted, result.unknown) == (2, [ghost])
        assert feedback.import_file(jsonl, source="crm").accepted == 2
        labels = feedback.labels("churn-api")
        assert [(x.label, x.source) for x in labels] == [
            (1, "file:labels.csv"),
            (0, "file:labels.csv"),
            ("yes", "crm"),
            ("yes", "crm"),
        ]


def test_bad_files_are_named(sqlite_settings: Settings, tmp_path: Path) -> None:
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("prediction_id,truth\nabc,1\n")
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"prediction_id": "a", "label": 1}\n{"prediction_id": \n')
    short = tmp_path / "short.jsonl"
    short.write_text('{"label": 1}\n')
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"nope")
    with Feedback(sqlite_settings) as feedback:
        with pytest.raises(ValidationError, match=r"nolabel\.csv: missing column label"):
            feedback.import_file(no_label)
        with pytest.raises(ValidationError, match=r"torn\.jsonl:2: not valid JSON"):
            feedback.import_file(torn)
        with pytest.raises(ValidationError, match=r"short\.jsonl:1: missing column prediction_id"):
            feedback.import_file(short)
        with pytest.raises(ValidationError, match=r"broken\.parquet: not a readable Parquet"):
            feedback.import_file(broken)
        with pytest.raises(ValidationError, match=r"\.csv, \.jsonl or \.parquet"):
            feedback.import_file(tmp_path / "labels.xlsx")
        with pytest.raises(NotFoundError, match="does not exist"):
            feedback.import_file(tmp_path / "missing.csv")


def test_cli_feedback_import(sqlite_settings: Settings, tmp_path: Path) -> None:
    from loopml.cli import app

    s = sqlite_settings
    ids = _log(s, "churn-api", 2)
    ghost = new_prediction_id()
    args = ["--home", str(s.home), "--db-url", s.db_url, "--artifacts-url", s.artifacts_url]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "\n".join(json.dumps({"prediction_id": p, "label": 1}) for p in [*ids, ghost])
    )
    result = CliRunner().invoke(app, [*args, "feedback", "import", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"accepted": 2, "unknown": [ghost]}

    only_ghosts = tmp_path / "ghosts.csv"
    only_ghosts.write_text(f"prediction_id,label\n{ghost},1\n")
    result = CliRunner().invoke(app, [*args, "feedback", "import", str(only_ghosts)])
    assert result.exit_code == 1
    assert "accepted 0, unknown 1" in result.stdout
    assert ghost in result.stderr
