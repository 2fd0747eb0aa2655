"""Running pipelines: records, caching, invalidation, failures, retries, resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.pipelines import PipelineRuns, StepStatus, resume_run, run_ref
from loopml.tracking import Client
from tests.pipelines import sample_pipes
from tests.pipelines.sample_pipes import calls

NUMBERS = "tests.pipelines.sample_pipes:numbers"


@pytest.fixture(autouse=True)
def _close_readers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


_OPEN: list[Any] = []


def _runs(settings: Settings) -> PipelineRuns:
    runs = PipelineRuns(settings)
    _OPEN.append(runs)
    return runs


def _client(settings: Settings) -> Client:
    client = Client(settings)
    _OPEN.append(client)
    return client


def statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.name: s.status for s in run.steps}


def test_a_run_records_every_step(settings: Settings, workdir: str) -> None:
    run = sample_pipes.numbers.run({"workdir": workdir, "n": 6}, settings=settings)
    assert run.status == "succeeded", run.error
    assert set(statuses(run).values()) == {StepStatus.SUCCEEDED}
    assert sorted(calls(workdir)) == sorted(
        ["load", "double", "partition", "total", "count", "report"]
    )
    assert run.params == {"workdir": workdir, "n": 6, "cut": 5}
    assert run.ref == NUMBERS and run.executor == "local" and run.started_by == "python"
    assert run.end_ms is not None and run.end_ms >= run.start_ms

    report = run.step("report")
    assert report.attempts == 1 and report.cache_key and report.duration_ms is not None
    assert report.inputs["small"]["from"] == "partition.small"
    assert report.inputs["doubled_total"]["digest"] == run.step("total").outputs["output"].digest
    assert report.outputs["output"].kind == "json"

    runs = _runs(settings)
    assert runs.output(run.id, "report") == {"total": 30, "size": 6, "small": 5, "large": 1}
    assert runs.output(run.id, "partition", "large") == [5]
    assert "loading 6 rows" in runs.logs(run.id, "load")
    assert runs.get(run.id[:8]).id == run.id
    assert [r.id for r in runs.runs("numbers")] == [run.id]
    ((name, count, newest),) = runs.pipelines()
    assert (name, count, newest.id) == ("numbers", 1, run.id)

    tracking = _client(settings).get_run(run.tracking_run_id)
    assert tracking.status.value == "FINISHED"
    assert tracking.params["n"] == "6"
    assert tracking.tags["loopml.pipeline.run_id"] == run.id


def test_a_rerun_with_nothing_changed_runs_nothing(settings: Settings, workdir: str) -> None:
    first = sample_pipes.numbers.run({"workdir": workdir}, settings=settings)
    before = len(calls(workdir))
    again = sample_pipes.numbers.run({"workdir": workdir}, settings=settings)
    assert len(calls(workdir)) == before
    assert set(statuses(again).values()) == {StepStatus.CACHED}
    for step in again.steps:
        assert step.cached_from == first.step(step.name).id
        assert step.outputs == first.step(step.name).outputs
    assert _runs(settings).output(again.id, "report")["size"] == 10


def test_a_changed_input_invalidates_exactly_what_is_downstream(
    settings: Settings, workdir: str
) -> None:
    sample_pipes.numbers.run({"workdir": workdir, "cut": 5}, settings=settings)
    Path(workdir, "calls.txt").unlink()
    run = sample_pipes.numbers.run({"workdir": workdir, "cut": 7}, settings=settings)
    # cut feeds partition only; report reads partition, so both run; the rest is reused
    assert sorted(calls(workdir)) == ["partition", "report"]
    assert statuses(run) == {
        "load": "cached",
        "double": "cached",
        "partition": "succeeded",
        "total": "cached",
        "count": "cached",
        "report": "succeeded",
    }


def test_an_upstream_output_that_comes_out_equal_keeps_downstream_cached(
    settings: Settings, workdir: str
) -> None:
    sample_pipes.numbers.run({"workdir": workdir, "cut": 5}, settings=settings)
    Path(workdir, "calls.txt").unlink()
    run = sample_pipes.numbers.run({"workdir": workdir, "cut": 5}, settings=settings, cache=False)
    assert len(calls(workdir)) == 6  # --no-cache runs everything
    assert all(s.status == "succeeded" for s in run.steps)


def test_a_step_can_opt_out_of_the_cache(settings: Settings, workdir: str) -> None:
    sample_pipes.uncached.run({"workdir": workdir}, settings=settings)
    run = sample_pipes.uncached.run({"workdir": workdir}, settings=settings)
    assert calls(workdir) == ["always", "always"]
    assert statuses(run) == {"always": "succeeded"}


def test_retries_until_success_and_records_attempts(settings: Settings, workdir: str) -> None:
    run = sample_pipes.retrying.run({"workdir": workdir, "fail_times": 2}, settings=settings)
    assert run.status == "succeeded"
    assert run.step("flaky").attempts == 3
    logs = _runs(settings).logs(run.id, "flaky")
    assert "attempt 1/3 failed: RuntimeError: flaky failure" in logs


def test_a_failure_skips_dependents_finishes_the_rest_and_resumes(
    settings: Settings, workdir: str, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    params = {"workdir": workdir, "broken_flag": str(flag)}
    failed = sample_pipes.branchy.run(params, settings=settings)
    assert failed.status == "failed"
    assert "step 'gate' failed: ValueError: gate is broken" in (failed.error or "")
    assert statuses(failed) == {
        "load": "succeeded",
        "gate": "failed",
        "double": "skipped",
        "total": "skipped",
        "count": "succeeded",
    }
    assert "ValueError" in _runs(settings).logs(failed.id, "gate")

    flag.unlink()
    Path(workdir, "calls.txt").unlink()
    resumed = resume_run(failed.id, settings=settings)
    assert resumed.status == "succeeded" and resumed.resumed_from == failed.id
    assert sorted(calls(workdir)) == ["double", "gate", "total"]
    assert resumed.step("load").cached_from == failed.step("load").id
    assert resumed.started_by == f"resume:{failed.id}"

    with pytest.raises(ValidationError, match="nothing to resume"):
        resume_run(resumed.id, settings=settings)


def test_a_step_past_its_timeout_fails(settings: Settings, workdir: str) -> None:
    run = sample_pipes.slow.run({"workdir": workdir, "seconds": 30}, settings=settings)
    assert run.status == "failed"
    assert run.step("sleepy").error == "timed out after 0.5 s"
    assert run.step("sleepy").duration_ms is not None and run.step("sleepy").duration_ms < 10_000


def test_dataset_inputs_are_recorded_and_new_versions_invalidate(
    settings: Settings, workdir: str, tmp_path: Path
) -> None:
    from loopml.data import DataCatalog

    catalog = DataCatalog(settings)
    _OPEN.append(catalog)
    catalog.ingest(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), name="points")
    first = sample_pipes.on_data.run({"workdir": workdir}, settings=settings)
    assert first.status == "succeeded", first.error
    assert first.step("describe").datasets == ["points@1"]
    assert _runs(settings).output(first.id, "tracked") == 2.0
    nested = _client(settings).get_run(first.step("tracked").tracking_run_id)
    assert nested.parent_id == first.tracking_run_id
    assert nested.metrics["mean_x"] == 2.0

    assert statuses(sample_pipes.on_data.run({"workdir": workdir}, settings=settings)) == {
        "describe": "cached",
        "tracked": "cached",
    }
    catalog.ingest(pd.DataFrame({"x": [10.0, 20.0]}), name="points")
    third = sample_pipes.on_data.run({"workdir": workdir}, settings=settings)
    assert third.step("describe").datasets == ["points@2"]
    assert statuses(third) == {"describe": "succeeded", "tracked": "succeeded"}
    assert _runs(settings).output(third.id, "tracked") == 15.0


def test_bad_parameters_and_refs_fail_before_anything_is_recorded(
    settings: Settings, workdir: str
) -> None:
    with pytest.raises(ValidationError, match="has no parameter\\(s\\) nope"):
        sample_pipes.numbers.run({"workdir": workdir, "nope": 1}, settings=settings)
    with pytest.raises(ValidationError, match="needs parameter 'workdir'"):
        sample_pipes.numbers.run({}, settings=settings)
    with pytest.raises(ValidationError, match="parameter 'n' from --param must be int"):
        run_ref(NUMBERS, params={"workdir": workdir, "n": "ten"}, settings=settings)
    with pytest.raises(NotFoundError, match="no dataset|not found|points"):
        sample_pipes.on_data.run({"workdir": workdir}, settings=settings)
    assert _runs(settings).runs() == []


def test_cli_strings_become_typed_parameters(settings: Settings, workdir: str) -> None:
    run = run_ref(NUMBERS, params={"workdir": workdir, "n": "3", "cut": "1"}, settings=settings)
    assert run.params == {"workdir": workdir, "n": 3, "cut": 1}
    assert _runs(settings).output(run.id, "report")["small"] == 1


def test_loopml_toml_sets_parameters(sqlite_settings: Settings, workdir: str) -> None:
    toml = Path(sqlite_settings.project_dir) / "loopml.toml"
    toml.write_text("[pipelines.numbers.params]\nn = 4\ncut = 2\n", encoding="utf-8")
    run = sample_pipes.numbers.run({"workdir": workdir, "cut": 3}, settings=sqlite_settings)
    assert run.params == {"workdir": workdir, "n": 4, "cut": 3}


def test_the_process_pool_runs_steps_in_workers(sqlite_settings: Settings, workdir: str) -> None:
    run = sample_pipes.numbers.run(
        {"workdir": workdir, "n": 8}, settings=sqlite_settings, executor="process", max_workers=2
    )
    assert run.status == "succeeded", run.error
    assert run.executor == "process"
    pids = {line.split()[1] for line in Path(workdir, "calls.txt").read_text().splitlines()}
    import os

    assert str(os.getpid()) not in pids
    assert _runs(sqlite_settings).output(run.id, "report")["size"] == 8
    cached = sample_pipes.numbers.run(
        {"workdir": workdir, "n": 8}, settings=sqlite_settings, executor="process"
    )
    assert set(statuses(cached).values()) == {"cached"}


def test_a_step_changing_its_input_in_place_does_not_change_what_others_see(
    sqlite_settings: Settings,
) -> None:
    local = sample_pipes.shared_input.run(settings=sqlite_settings, cache=False)
    with PipelineRuns(sqlite_settings) as runs:
        assert runs.output(local.id, "sum_rows") == 6
        assert runs.output(local.id, "append_99") == 105


def test_a_dead_pool_worker_fails_its_step_and_the_rest_finishes(
    sqlite_settings: Settings, workdir: str
) -> None:
    run = sample_pipes.crashing.run(
        {"workdir": workdir}, settings=sqlite_settings, executor="process", max_workers=1
    )
    assert run.status == "failed"
    assert run.step("crash").status == "failed" and "executor" in (run.step("crash").error or "")
    assert run.step("count").status == "succeeded"


def test_parameter_types_hold_through_the_cli_and_resume(sqlite_settings: Settings) -> None:
    run = run_ref(
        "tests.pipelines.sample_pipes:typed", params={"tag": "123"}, settings=sqlite_settings
    )
    assert run.status == "succeeded", run.error
    assert run.params == {"value": 4, "tag": "123"}
    with PipelineRuns(sqlite_settings) as runs:
        assert runs.output(run.id, "tagged") == "str:123"
        assert runs.output(run.id, "half") == 2


def test_resuming_a_resumed_run_still_reuses_what_succeeded(
    sqlite_settings: Settings, workdir: str, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    params = {"workdir": workdir, "broken_flag": str(flag)}
    first = sample_pipes.branchy.run(params, settings=sqlite_settings, cache=False)
    second = resume_run(first.id, settings=sqlite_settings)
    assert second.status == "failed" and second.step("load").status == "cached"
    flag.unlink()
    third = resume_run(second.id, settings=sqlite_settings)
    assert third.status == "succeeded"
    assert third.step("load").status == "cached"
    assert calls(workdir).count("load") == 1


def test_current_step_works_under_a_timeout_off_the_main_thread(
    sqlite_settings: Settings,
) -> None:
    import threading

    found: dict[str, Any] = {}

    def run_it() -> None:
        found["run"] = sample_pipes.introspect.run(settings=sqlite_settings)

    worker = threading.Thread(target=run_it)
    worker.start()
    worker.join(60)
    assert found["run"].status == "succeeded", found["run"].error


def test_the_code_cached_is_the_code_that_ran(tmp_path: Path) -> None:
    from loopml.pipelines import load_pipeline

    path = tmp_path / "edited_pipe.py"
    source = (
        "from loopml.pipelines import pipeline, step\n"
        "@step\ndef value() -> int:\n    return 1\n"
        "@pipeline\ndef edited():\n    value()\n"
    )
    path.write_text(source, encoding="utf-8")
    loaded = load_pipeline(f"{path}:edited")
    before = loaded.nodes["value"].step.source_digest
    path.write_text(source.replace("return 1", "return 2"), encoding="utf-8")
    assert loaded.nodes["value"].step.source_digest == before
