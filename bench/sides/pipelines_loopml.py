"""Pipelines workloads on loopml; runs under the project interpreter with ``src`` on the path.

``python -m bench.sides.pipelines_loopml WORKDIR CONFIG_JSON``: a fresh store under
WORKDIR/store-N/.loopml for each repetition, ``Pipeline.run`` in this process (executor
``local``), figures as JSON on the last stdout line.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import loopml
from bench.sides._common import emit, parse_args
from bench.sides._pipelines import measure
from loopml.pipelines import Pipeline, PipelineRunRecord, StepStatus, pipeline, step

STEPS = 20


@step
def bump(value: int) -> int:
    """The no-op step: one more than its input, so every step has its own cache key.

    (Steps returning their input unchanged would all share the first one's key, code and
    inputs being equal, and a first run would reuse 19 of them.)
    """
    return value + 1


@step
def warm(value: int) -> int:
    """The warm-up pipeline's step: other code, so it leaves nothing the chain could reuse."""
    return value * 2


def noop_chain(steps: int, name: str) -> Pipeline:
    """A pipeline of ``steps`` :func:`bump` steps, each reading the previous one's output."""

    def chain(start: int = 0) -> None:
        value = start
        for _ in range(steps):
            value = bump(value)

    return Pipeline(chain, name=name)


noop_20_steps = noop_chain(STEPS, "noop_20_steps")


@pipeline
def warmup(start: int = 1) -> None:
    warm(warm(start))


def _version() -> str:
    found = getattr(loopml, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:
        return "unknown"


class LoopmlSide:
    """``Pipeline.run`` in this process, loopml's default settings, home in the workdir."""

    package = "loopml"
    version = _version()

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._settings = self._fresh("warmup")
        self._pipeline: Pipeline = noop_20_steps
        self._last: PipelineRunRecord | None = None

    def _fresh(self, name: str) -> loopml.Settings:
        # project_dir=workdir: no loopml.toml from wherever the bench was started is read.
        home = self._workdir / name / ".loopml"
        return loopml.load_settings(project_dir=self._workdir, home=str(home))

    def _warm(self) -> None:
        # Creates the database (migrations) and the artifact store; the first call also
        # imports and warms up the runner, the tracking client and the store code.
        record = warmup.run(settings=self._settings, executor="local")
        if record.status != "succeeded":
            raise SystemExit(f"warm-up pipeline run {record.status}: {record.error}")

    def warm_up(self) -> None:
        self._warm()

    def prepare(self, steps: int, repetition: int) -> None:
        self._settings = self._fresh(f"store-{repetition}")
        self._warm()
        if steps != STEPS:
            self._pipeline = noop_chain(steps, f"noop_{steps}_steps")

    def run(self) -> None:
        self._last = self._pipeline.run(settings=self._settings, executor="local")

    def outcome(self) -> tuple[int, int]:
        record = self._last
        if record is None or record.status != "succeeded":
            error = "no run" if record is None else f"{record.status}: {record.error}"
            raise SystemExit(f"pipeline {self._pipeline.name} did not succeed ({error})")
        statuses = [found.status for found in record.steps]
        return statuses.count(StepStatus.SUCCEEDED), statuses.count(StepStatus.CACHED)


def main() -> None:
    args = parse_args()
    emit(measure(LoopmlSide(args.workdir), args.config))


if __name__ == "__main__":
    main()
