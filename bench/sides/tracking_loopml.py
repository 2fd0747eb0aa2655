"""Tracking workloads on loopml; runs under the project interpreter with ``src`` on the path.

``python -m bench.sides.tracking_loopml WORKDIR CONFIG_JSON``: a fresh store under
WORKDIR/.loopml, the API a user would write, figures as JSON on the last stdout line.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import loopml
from bench.sides._common import emit, parse_args
from bench.sides._tracking import Row, measure

LOG_EXPERIMENT = "bench-log-metric"
RUNS_EXPERIMENT = "bench-runs"


def _version() -> str:
    found = getattr(loopml, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:
        return "unknown"


class LoopmlSide:
    """loopml's run handle for writing, its client for the search."""

    package = "loopml"
    version = _version()

    def __init__(self, workdir: Path) -> None:
        # project_dir=workdir: no loopml.toml from wherever the bench was started is read.
        self._settings = loopml.load_settings(project_dir=workdir, home=str(workdir / ".loopml"))
        self._client = loopml.Client(self._settings)

    def warm_up(self) -> None:
        # A run in another experiment creates the database and runs its migrations.
        with loopml.start_run(experiment="warmup", settings=self._settings) as run:
            run.log_param("warm", "up")
            run.log_metric("warm", 1.0, step=0)
        # MLflow's side creates its experiments before timing too; use whichever
        # get-or-create call this loopml has (else the first timed run creates it).
        for name in ("get_or_create_experiment", "experiment"):
            create = getattr(self._client, name, None)
            if callable(create):
                create(LOG_EXPERIMENT)
                create(RUNS_EXPERIMENT)
                break

    def log_metric_run(self, calls: int) -> None:
        with loopml.start_run(experiment=LOG_EXPERIMENT, settings=self._settings) as run:
            for i in range(calls):
                run.log_metric("loss", float(i), step=i)

    def stored_loss(self) -> list[float]:
        found = self._client.search_runs(experiment=LOG_EXPERIMENT, max_results=1)
        if not found:
            return []
        history = self._client.get_metric_history(found[0].id, "loss")
        return [point.value for point in sorted(history, key=lambda point: point.step)]

    def create_runs(self, rows: Sequence[Row]) -> None:
        for params, metrics in rows:
            with loopml.start_run(experiment=RUNS_EXPERIMENT, settings=self._settings) as run:
                run.log_params(params)
                run.log_metrics(metrics)

    def search(self, threshold: float, max_results: int) -> Sequence[object]:
        return self._client.search_runs(
            experiment=RUNS_EXPERIMENT,
            filter=f"metrics.m0 > {threshold}",
            order_by=["metrics.m1 DESC"],
            max_results=max_results,
        )

    def m1_values(self, found: Sequence[object]) -> list[float]:
        return [float(run.metrics["m1"]) for run in found]  # type: ignore[attr-defined]


def main() -> None:
    args = parse_args()
    emit(measure(LoopmlSide(args.workdir), args.config))


if __name__ == "__main__":
    main()
