"""Drawing pipelines: nodes, edges, parameters, renderings, and definition errors."""

from __future__ import annotations

import pytest

from loopml.core import ValidationError
from loopml.pipelines import Pipeline, Step, load_pipeline, pipeline, step
from tests.pipelines import sample_pipes


def test_a_pipeline_draws_its_dag_in_run_order() -> None:
    dag = sample_pipes.numbers
    assert isinstance(dag, Pipeline)
    assert list(dag.nodes) == ["load", "double", "partition", "total", "count", "report"]
    assert ("load", "double") in dag.edges
    assert ("partition", "report") in dag.edges
    assert dag.downstream("double") == {"total", "report"}
    assert set(dag.params) == {"workdir", "n", "cut"}
    assert dag.params["n"].default == 10
    assert dag.params["workdir"].required


def test_renderings_name_every_step_and_input() -> None:
    dag = sample_pipes.numbers
    tree = dag.tree()
    assert tree.splitlines()[0] == "pipeline numbers (6 steps)"
    assert "report" in tree and "<- count, partition, total" in tree.replace("param:workdir, ", "")
    dot = dag.to_dot()
    assert dot.startswith('digraph "numbers"') and '"load" -> "double";' in dot
    mermaid = dag.to_mermaid()
    assert mermaid.startswith("flowchart LR") and '["partition"]' in mermaid


def test_steps_are_plain_functions_outside_a_pipeline(workdir: str) -> None:
    assert isinstance(sample_pipes.double, Step)
    assert sample_pipes.double(workdir, [1, 2]) == [2, 4]


def test_arithmetic_on_placeholders_says_what_to_do() -> None:
    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline
    def adds(x: int = 1):
        inc(x + 1)

    with pytest.raises(ValidationError, match="compute with them inside a step"):
        adds.nodes  # noqa: B018


def test_a_step_called_twice_gets_a_numbered_node() -> None:
    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline
    def twice(x: int = 0):
        inc(inc(x))

    assert list(twice.nodes) == ["inc", "inc_2"]


def test_parameters_cannot_steer_the_dag() -> None:
    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline
    def branching(flag: bool = True):
        if flag:
            inc(1)

    with pytest.raises(ValidationError, match="no value while the pipeline's DAG is drawn"):
        branching.nodes  # noqa: B018


def test_definition_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="not a valid name"):
        step(name="has space")(lambda: 1)
    with pytest.raises(ValidationError, match="retries must be >= 0"):
        step(name="r", retries=-1)(lambda: 1)
    with pytest.raises(ValidationError, match="timeout_s must be > 0"):
        step(name="t", timeout_s=0)(lambda: 1)

    @step
    def one(x: int) -> int:
        return x

    @pipeline
    def bad_call():
        one(1, 2)

    with pytest.raises(ValidationError, match="step 'one' called with bad arguments"):
        bad_call.nodes  # noqa: B018

    @pipeline
    def empty():
        return None

    with pytest.raises(ValidationError, match="calls no steps"):
        empty.nodes  # noqa: B018

    @pipeline
    def nested(x: int = 1):
        one([x])

    with pytest.raises(ValidationError, match="inside a container"):
        nested.nodes  # noqa: B018


def test_load_pipeline_by_module_and_by_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_pipeline("tests.pipelines.sample_pipes:numbers") is sample_pipes.numbers
    path = tmp_path / "one_pipe.py"
    path.write_text(
        "from loopml.pipelines import pipeline, step\n"
        "@step\ndef hi(x: int) -> int:\n    return x\n"
        "@pipeline\ndef only(x: int = 1):\n    hi(x)\n",
        encoding="utf-8",
    )
    assert load_pipeline(str(path)).name == "only"
    assert load_pipeline(f"{path}:only").name == "only"
    with pytest.raises(Exception, match="has no pipeline 'nope'"):
        load_pipeline(f"{path}:nope")
    with pytest.raises(Exception, match="does not exist"):
        load_pipeline(str(tmp_path / "missing.py") + ":x")
    with pytest.raises(Exception, match="cannot import module"):
        load_pipeline("no_such_module_xyz:pipe")
    with pytest.raises(ValidationError, match=r"defines \d+ pipelines"):
        load_pipeline("tests.pipelines.sample_pipes")
