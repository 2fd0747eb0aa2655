"""Tracking workloads on MLflow; runs under the peers' interpreter (bench/.venv-peers).

``python -m bench.sides.tracking_mlflow WORKDIR CONFIG_JSON``: a fresh SQLite store in
WORKDIR, the fluent API a user would write, figures as JSON on the last stdout line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from bench.sides._common import emit, parse_args
from bench.sides._tracking import Row, measure

LOG_EXPERIMENT = "bench-log-metric"
RUNS_EXPERIMENT = "bench-runs"


class MlflowSide:
    """MLflow's fluent API on a SQLite store; its client only for the search."""

    package = "mlflow"
    version = mlflow.__version__

    def __init__(self, workdir: Path) -> None:
        mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
        self._client = MlflowClient()
        self._log_id = ""
        self._runs_id = ""

    def warm_up(self) -> None:
        mlflow.set_experiment("warmup")  # creates the database and runs its migrations
        with mlflow.start_run():
            mlflow.log_param("warm", "up")
            mlflow.log_metric("warm", 1.0, step=0)
        self._log_id = self._client.create_experiment(LOG_EXPERIMENT)
        self._runs_id = self._client.create_experiment(RUNS_EXPERIMENT)

    def log_metric_run(self, calls: int) -> None:
        with mlflow.start_run(experiment_id=self._log_id):
            for i in range(calls):
                mlflow.log_metric("loss", float(i), step=i)

    def stored_loss(self) -> list[float]:
        found = self._client.search_runs([self._log_id], max_results=1)
        if not found:
            return []
        history = self._client.get_metric_history(found[0].info.run_id, "loss")
        return [point.value for point in sorted(history, key=lambda point: point.step)]

    def create_runs(self, rows: Sequence[Row]) -> None:
        for params, metrics in rows:
            with mlflow.start_run(experiment_id=self._runs_id):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)

    def search(self, threshold: float, max_results: int) -> Sequence[object]:
        return self._client.search_runs(
            [self._runs_id],
            filter_string=f"metrics.m0 > {threshold}",
            order_by=["metrics.m1 DESC"],
            max_results=max_results,
        )

    def m1_values(self, found: Sequence[object]) -> list[float]:
        return [float(run.data.metrics["m1"]) for run in found]  # type: ignore[attr-defined]


def main() -> None:
    args = parse_args()
    emit(measure(MlflowSide(args.workdir), args.config))


if __name__ == "__main__":
    main()
