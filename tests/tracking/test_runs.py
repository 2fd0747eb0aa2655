"""Tracking runs on both databases: logging, reading back, flushing, nesting."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from loopml.core import NotFoundError, RunStatus, Settings, ValidationError, load_settings
from loopml.tracking import Client


def test_run_records_params_metrics_tags(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp", name="first", params={"lr": 0.1}) as run:
        run.log_params({"depth": 6, "model": "gbm"})
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
        run.set_tag("team", "risk")
    stored = client.get_run(run.id)
    assert stored.name == "first"
    assert stored.status is RunStatus.FINISHED
    assert stored.end_ms is not None and stored.end_ms >= stored.start_ms
    assert stored.params == {"lr": "0.1", "depth": "6", "model": "gbm"}
    assert stored.metrics == {"loss": 0.25}
    assert stored.tags["team"] == "risk"
    client.close()


def test_metric_history_keeps_every_point_in_step_order(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        run.log_metric("acc", 0.3, step=2)
        run.log_metric("acc", 0.1, step=0)
        run.log_metric("acc", 0.2, step=1)
    history = client.get_metric_history(run.id, "acc")
    assert [(p.step, p.value) for p in history] == [(0, 0.1), (1, 0.2), (2, 0.3)]
    assert client.get_run(run.id).metrics["acc"] == 0.3  # latest = highest step
    client.close()


def test_steps_count_up_per_metric_when_not_given(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        for value in (1.0, 2.0, 3.0):
            run.log_metric("a", value)
        run.log_metric("b", 9.0)
    assert [p.step for p in client.get_metric_history(run.id, "a")] == [0, 1, 2]
    assert [p.step for p in client.get_metric_history(run.id, "b")] == [0]
    client.close()


def test_nan_metric_is_kept(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        run.log_metric("loss", float("nan"))
    assert math.isnan(client.get_run(run.id).metrics["loss"])
    client.close()


def test_exception_marks_run_failed_and_keeps_its_data(settings: Settings) -> None:
    client = Client(settings)
    with pytest.raises(RuntimeError), client.start_run("exp") as run:
        run.log_metric("loss", 1.0)
        raise RuntimeError("training diverged")
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics == {"loss": 1.0}
    client.close()


def test_nested_runs_record_parent(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp", name="sweep") as parent:
        with parent.start_child(name="trial-0") as child:
            child.log_metric("score", 1.0)
    assert client.get_run(child.id).parent_id == parent.id
    children = client.search_runs("exp", filter=f"attributes.parent_id = '{parent.id}'")
    assert [r.id for r in children] == [child.id]
    client.close()


def test_flush_makes_writes_visible_to_another_client(settings: Settings) -> None:
    writer = Client(settings)
    run = writer.start_run("exp")
    run.log_metric("loss", 0.7)
    run.flush()
    reader = Client(settings)
    assert reader.get_run(run.id).metrics == {"loss": 0.7}
    assert reader.get_run(run.id).status is RunStatus.RUNNING
    run.end()
    reader.close()
    writer.close()


def test_run_id_prefix_resolves(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        pass
    assert client.get_run(run.id[:8]).id == run.id
    client.close()


def test_environment_is_captured_as_tags(tmp_path: Path, db_url: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('v2')\n")  # an uncommitted change
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    settings = load_settings(project_dir=repo, environ={}, db_url=db_url, system_metrics=False)
    client = Client(settings)
    with client.start_run("exp") as run:
        pass
    tags = client.get_run(run.id).tags
    assert tags["loopml.git.commit"] == commit
    assert tags["loopml.git.dirty"] == "true"
    assert tags["loopml.git.diff_digest"].startswith("blake3:")
    assert tags["loopml.python"].count(".") == 2
    assert {"loopml.host", "loopml.command", "loopml.packages", "loopml.user"} <= set(tags)
    client.close()


def test_system_metrics_sampled_while_open(tmp_path: Path) -> None:
    settings = load_settings(
        project_dir=tmp_path, environ={}, system_metrics=True, system_metrics_interval_s=0.05
    )
    client = Client(settings)
    with client.start_run("exp") as run:
        import time

        time.sleep(0.3)
    metrics = client.get_run(run.id).metrics
    assert 0.0 <= metrics["system/cpu_percent"] <= 100.0 * 64
    assert metrics["system/memory_used_mb"] > 0
    assert len(client.get_metric_history(run.id, "system/process_rss_mb")) >= 2
    client.close()


def test_system_metrics_off_with_one_setting(tmp_path: Path) -> None:
    settings = load_settings(
        project_dir=tmp_path,
        environ={"LOOPML_SYSTEM_METRICS": "false"},
        system_metrics_interval_s=0.05,
    )
    client = Client(settings)
    with client.start_run("exp") as run:
        import time

        time.sleep(0.2)
    assert not [k for k in client.get_run(run.id).metrics if k.startswith("system/")]
    client.close()


def test_sad_param_cannot_change(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)  # same value again is fine
        with pytest.raises(ValidationError, match="param 'lr' .* is already '0.1'.*got '0.2'"):
            run.log_param("lr", 0.2)
    client.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.log_metric("loss", "high"), "metric 'loss' must be a real number; got 'high'"),
        (lambda r: r.log_metric("loss", True), "metric 'loss' must be a real number"),
        (lambda r: r.log_metric("", 1.0), "metric name must be"),
        (lambda r: r.log_metric("a\nb", 1.0), "metric name must be"),
        (lambda r: r.log_metric("loss", 1.0, step=1.5), "step of metric 'loss' must be an integer"),
        (lambda r: r.log_param("x" * 300, 1), "param name must be 1-250"),
        (lambda r: r.set_tag("k", "v" * 7000), "at most 6000"),
    ],
)
def test_sad_bad_logging_input_names_the_field(settings: Settings, call, message: str) -> None:  # type: ignore[no-untyped-def]
    client = Client(settings)
    with client.start_run("exp") as run:
        with pytest.raises(ValidationError, match=message):
            call(run)
    client.close()


def test_sad_logging_after_end(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("exp") as run:
        pass
    with pytest.raises(ValidationError, match="has ended"):
        run.log_metric("loss", 1.0)
    client.close()


def test_sad_missing_run_and_experiment(settings: Settings) -> None:
    client = Client(settings)
    with pytest.raises(NotFoundError, match="no run with id '0123456789abcdef0123456789abcdef'"):
        client.get_run("0123456789abcdef0123456789abcdef")
    with pytest.raises(NotFoundError, match="no experiment named 'nope'"):
        client.search_runs("nope")
    client.close()


def test_sad_bad_experiment_name(settings: Settings) -> None:
    client = Client(settings)
    with pytest.raises(ValidationError, match="experiment name must be 1-256 printable"):
        client.start_run("")
    client.close()
