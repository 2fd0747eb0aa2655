"""Serving workloads on loopml; runs under the project interpreter with ``src`` on the path.

``python -m bench.sides.serving_loopml WORKDIR CONFIG_JSON``: a fresh home under
WORKDIR/.loopml; the model is trained with ``loopml.training.fit``, registered, deployed,
and served with ``loopml serve`` (one worker, durable prediction log on: the default).
Also measures loopml alone on a RandomForest of 100 trees, with and without ONNX Runtime.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import loopml
from bench.sides._common import emit, parse_args
from bench.sides._serving import ServerSpec, measure, serve_figures
from bench.sides._serving_data import TARGET, dataset, estimator, request_rows


def _version() -> str:
    found = getattr(loopml, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cli() -> list[str]:
    """The ``loopml`` command of this interpreter's environment (the editable install)."""
    script = Path(sys.executable).parent / "loopml"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "loopml"]


class LoopmlServing:
    """``fit`` + ``ModelRegistry.register`` + ``Deployments.deploy``, then ``loopml serve``."""

    package = "loopml"
    version = _version()

    def __init__(self, workdir: Path, config: Mapping[str, Any]) -> None:
        self._home = workdir / ".loopml"
        # project_dir=workdir: no loopml.toml from wherever the bench was started is read.
        self._settings = loopml.load_settings(project_dir=workdir, home=str(self._home))
        self._config = config
        self._frame = dataset(config["rows"], config["features"], config["seed"])
        self._models: dict[str, Any] = {}
        self._data = ""

    def _register(self, kind: str) -> str:
        from loopml.data import DataCatalog
        from loopml.registry import ModelRegistry
        from loopml.training import fit

        if not self._data:  # a catalog version, so the model records what it learned from
            with DataCatalog(self._settings) as catalog:
                self._data = catalog.ingest(self._frame, name="bench-serving").version.ref
        if kind not in self._models:
            model = estimator(kind, self._config["seed"])
            result = fit(model, self._data, target=TARGET, settings=self._settings, cv=0)
            with ModelRegistry(self._settings) as registry:
                registry.register(kind, run_id=result.run_id)
            self._models[kind] = result.model
        return f"{kind}@1"

    def prepare(self, kind: str, *, onnx: bool = False) -> ServerSpec:
        from loopml.serving import Deployments, DeploymentSpec

        ref = self._register(kind)
        if onnx:
            from loopml.registry import ModelRegistry

            with ModelRegistry(self._settings) as registry:
                if "onnx" not in registry.get(ref).extra:
                    registry.export_onnx(ref)
        name = f"{kind}-onnx" if onnx else kind
        with Deployments(self._settings) as deployments:
            deployments.deploy(name, DeploymentSpec.single(ref, onnx=onnx), reason="bench")
        return ServerSpec(
            label=name,
            command=[*_cli(), "--home", str(self._home), "serve", name, "--port", "{port}"],
            path=f"/v1/deployments/{name}/predict",
        )

    def body(self, row: Mapping[str, float]) -> bytes:
        return json.dumps(row).encode()

    def labels(self, answer: Any) -> list[Any]:
        return [item["prediction"] for item in answer["predictions"]]

    def expected(self, kind: str, rows: Sequence[Mapping[str, float]]) -> list[Any]:
        import pandas as pd

        predicted = self._models[kind].predict(pd.DataFrame(list(rows)))
        return [value.item() for value in predicted]


def rf_figures(side: LoopmlServing, config: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """loopml alone: a RandomForest of 100 trees served by scikit-learn, then by ONNX Runtime."""
    rows = request_rows(dataset(config["rows"], config["features"], config["seed"]), 256)
    out: dict[str, Any] = {}
    for onnx in (False, True):
        spec = side.prepare("rf100", onnx=onnx)
        found = serve_figures(
            side,
            spec,
            "rf100",
            rows,
            workdir,
            cold_starts=1,
            warmup_s=config["warmup_seconds"],
            latency_s=config["extra_seconds"],
            throughput_s=config["extra_seconds"],
            max_requests=config["max_requests"],
            timeout_s=config["start_timeout_seconds"],
        )
        out["onnx" if onnx else "sklearn"] = {
            "cold_start_s": found["cold_start"]["seconds"],
            "c1": {k: v for k, v in found["p99_c1"].items() if k != "seconds"},
            "c8": {k: v for k, v in found["throughput_c8"].items() if k != "seconds"},
            "probe": found["probe"],
        }
    return out


def main() -> None:
    args = parse_args()
    side = LoopmlServing(args.workdir, args.config)
    figures = measure(side, args.config, args.workdir)
    if args.config.get("extra_seconds"):
        try:
            figures["rf100"] = rf_figures(side, args.config, args.workdir)
        except Exception as exc:  # a loopml-only figure never hides the compared ones
            figures["rf100"] = {"error": f"{type(exc).__name__}: {exc}"}
    emit(figures)


if __name__ == "__main__":
    main()
