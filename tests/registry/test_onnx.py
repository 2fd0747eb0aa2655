"""ONNX export: conversion, parity on held-out rows, recording on the version, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import NotFoundError, PermissionDeniedError, Settings, ValidationError
from loopml.core import load_settings as make_settings
from loopml.data import DataCatalog, SplitSpec
from loopml.governance import Identity, Role, list_audit
from loopml.registry import ModelRegistry, onnx_inputs
from tests.registry.conftest import make_frame


@dataclass
class World:
    settings: Settings
    runs: dict[str, str]  # model kind -> tracking run id


def _frame() -> pd.DataFrame:
    frame = make_frame(rows=400, seed=1)
    frame["plan"] = np.where(frame["b"] > 0.5, "pro", np.where(frame["c"] > 0, "plus", "free"))
    frame["y"] = 3.0 * frame["a"] - 2.0 * frame["b"] + 50.0 + 0.1 * frame["c"]
    return frame


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One SQLite store with a split dataset and one fitted run per kind of model."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from loopml.training import fit

    root = tmp_path_factory.mktemp("onnx")
    settings = make_settings(project_dir=root, environ={}, system_metrics=False)
    with DataCatalog(settings) as catalog:
        ref = catalog.ingest(_frame(), name="mix").version.ref
        catalog.split(ref, SplitSpec(kind="stratified", column="label"), name="main")
    numeric = ["a", "b", "c"]
    mixed = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]), (StandardScaler(), numeric)
        ),
        LogisticRegression(),
    )
    estimators = {
        "logreg": (LogisticRegression(), numeric, "label"),
        "forest": (
            RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
            numeric,
            "label",
        ),
        "ridge": (Ridge(), numeric, "y"),
        "mixed": (mixed, [*numeric, "plan"], "label"),
        "unconvertible": (
            make_pipeline(FunctionTransformer(np.abs), LogisticRegression()),
            numeric,
            "label",
        ),
    }
    runs = {}
    for kind, (estimator, features, target) in estimators.items():
        result = fit(
            estimator, ref, target=target, features=features, split="main", settings=settings, cv=0
        )
        runs[kind] = result.run_id
    return World(settings, runs)


def _audit_actions(registry: ModelRegistry, target: str) -> list[str]:
    with registry.store.read() as conn:
        return [e.action for e in list_audit(conn, limit=200, target_prefix=target)]


@pytest.mark.parametrize("kind", ["logreg", "forest", "ridge", "mixed"])
def test_export_passes_parity_and_is_recorded(world: World, kind: str) -> None:
    with ModelRegistry(world.settings) as registry:
        version = registry.register(f"m-{kind}", run_id=world.runs[kind])
        export = registry.export_onnx(version.ref)
        record = registry.get(version.ref).extra["onnx"]
        actions = _audit_actions(registry, f"model:{version.ref}")
        session = registry.load_onnx(version.ref)
        model = registry.load(version.ref)

    assert record["digest"] == export.digest and record["parity"] == export.parity
    assert record["exported_by"] == registry.identity.name and record["opset"]["ai.onnx"] >= 13
    assert export.parity["rows"] > 0 and export.parity["sample"] == "held-out rows"
    assert export.parity["max_abs_diff"] <= 1e-5 or kind == "ridge"
    assert actions.count("model.export_onnx") == 1
    if kind == "mixed":  # a string column: one tensor per column
        assert [(i["name"], i["type"]) for i in export.inputs] == [
            ("a", "float"),
            ("b", "float"),
            ("c", "float"),
            ("plan", "string"),
        ]
    else:
        assert export.inputs == [{"name": "input", "type": "float", "columns": ["a", "b", "c"]}]

    rows = _frame().iloc[:50]
    features = [c for spec in export.inputs for c in spec["columns"]]
    outputs = session.run(None, onnx_inputs(export.inputs, rows))
    if kind == "ridge":
        assert export.outputs == ["variable"]
        np.testing.assert_allclose(outputs[0].ravel(), model.predict(rows[features]), rtol=1e-5)
    else:
        assert export.outputs == ["label", "probabilities"]
        assert (outputs[0] == model.predict(rows[features])).all()
        assert outputs[1].shape == (50, 2)  # a plain tensor: no ZipMap


def test_failed_parity_or_conversion_records_nothing(world: World) -> None:
    with ModelRegistry(world.settings) as registry:
        strict = registry.register("strict", run_id=world.runs["logreg"])
        # float32 ONNX probabilities differ from float64 scikit-learn ones in the 8th digit
        with pytest.raises(
            ValidationError, match=r"parity failed at sample row \d+ .*class \d"
        ) as err:
            registry.export_onnx(strict.ref, tolerance=0.0)
        assert "> tolerance 0" in str(err.value) and "nothing was recorded" in str(err.value)
        bad = registry.register("bad", run_id=world.runs["unconvertible"])
        with pytest.raises(
            ValidationError, match="cannot be converted to ONNX.*FunctionTransformer"
        ):
            registry.export_onnx(bad.ref)
        for version in (strict, bad):
            assert "onnx" not in registry.get(version.ref).extra
            assert "model.export_onnx" not in _audit_actions(registry, f"model:{version.ref}")
            with pytest.raises(NotFoundError, match="has no ONNX export"):
                registry.load_onnx(version.ref)
        viewer = ModelRegistry(world.settings, identity=Identity("vic", Role.VIEWER, "token"))
        with pytest.raises(PermissionDeniedError, match="model.export_onnx"):
            viewer.export_onnx(strict.ref)
        viewer.close()
        with pytest.raises(ValidationError, match="sample_rows"):
            registry.export_onnx(strict.ref, sample_rows=0)


def test_cli_export_onnx(world: World) -> None:
    with ModelRegistry(world.settings) as registry:
        registry.register("cli", run_id=world.runs["logreg"])
    base = ["--db-url", world.settings.db_url, "--artifacts-url", world.settings.artifacts_url]
    runner = CliRunner()
    result = runner.invoke(app, [*base, "models", "export-onnx", "cli@1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["parity"]["labels_equal"] is True and summary["outputs"][0] == "label"
    result = runner.invoke(app, [*base, "models", "export-onnx", "cli@1", "--sample-rows", "20"])
    assert result.exit_code == 0, result.output
    assert "parity on 20 held-out rows" in result.output
    result = runner.invoke(app, [*base, "models", "card", "cli@1", "--no-importance"])
    assert "| ONNX | blake3:" in result.output
