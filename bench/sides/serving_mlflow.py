"""Serving workloads on MLflow; runs under the peers' interpreter (bench/.venv-peers).

``python -m bench.sides.serving_mlflow WORKDIR CONFIG_JSON``: a fresh SQLite tracking store
in WORKDIR; the model is logged with ``mlflow.sklearn.log_model`` into the model registry
and served with ``mlflow models serve -m models:/gbc/1 --env-manager local -w 1``
(FastAPI under uvicorn), figures as JSON on the last stdout line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow

from bench.sides._common import emit, parse_args
from bench.sides._serving import ServerSpec, measure
from bench.sides._serving_data import TARGET, dataset, estimator

# skops refuses to load a type it was not told to trust; a fitted tree holds this one.
TRUSTED = ["sklearn.tree._tree.Tree"]


class MlflowServing:
    """``mlflow.sklearn.log_model`` with a registered name, then ``mlflow models serve``."""

    package = "mlflow"
    version = mlflow.__version__

    def __init__(self, workdir: Path, config: Mapping[str, Any]) -> None:
        self._uri = f"sqlite:///{workdir / 'mlflow.db'}"
        mlflow.set_tracking_uri(self._uri)
        mlflow.set_experiment("bench-serving")
        self._config = config
        self._models: dict[str, Any] = {}

    def prepare(self, kind: str) -> ServerSpec:
        frame = dataset(self._config["rows"], self._config["features"], self._config["seed"])
        features = frame.drop(columns=[TARGET])
        model = estimator(kind, self._config["seed"]).fit(features, frame[TARGET])
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=kind,
                input_example=features.head(5),
                skops_trusted_types=TRUSTED,
            )
        self._models[kind] = model
        bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs `uvicorn`
        return ServerSpec(
            label=kind,
            command=[
                str(Path(bin_dir) / "mlflow"),
                *("models", "serve", "-m", f"models:/{kind}/1", "--env-manager", "local"),
                *("-h", "127.0.0.1", "-p", "{port}", "-w", "1"),
            ],
            path="/invocations",
            env={
                "MLFLOW_TRACKING_URI": self._uri,
                "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            },
        )

    def body(self, row: Mapping[str, float]) -> bytes:
        return json.dumps({"dataframe_records": [dict(row)]}).encode()

    def labels(self, answer: Any) -> list[Any]:
        return list(answer["predictions"])

    def expected(self, kind: str, rows: Sequence[Mapping[str, float]]) -> list[Any]:
        import pandas as pd

        predicted = self._models[kind].predict(pd.DataFrame(list(rows)))
        return [value.item() for value in predicted]


def main() -> None:
    args = parse_args()
    emit(measure(MlflowServing(args.workdir, args.config), args.config, args.workdir))


if __name__ == "__main__":
    main()
