"""Batch scoring: chunks, executors, input order, the version per row, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.registry import ModelRegistry
from loopml.serving import predict_file
from tests.serving.batch_models import register_toy

ROWS = 3000


@pytest.fixture
def toy(sqlite_settings: Settings) -> Settings:
    register_toy(sqlite_settings)
    return sqlite_settings


def _input(tmp_path: Path, suffix: str = ".csv") -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"row": np.arange(ROWS), "b": rng.normal(size=ROWS), "a": rng.normal(size=ROWS)}
    )
    path = tmp_path / f"input{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path, frame


def _expected(settings: Settings, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    with ModelRegistry(settings) as registry:
        model = registry.load("toy@1")
    return model.predict(frame[["a", "b"]]), model.predict_proba(frame[["a", "b"]])


@pytest.mark.parametrize(
    ("executor", "suffix", "out"),
    [
        ("local", ".csv", ".parquet"),
        ("local", ".jsonl", ".csv"),
        ("process", ".parquet", ".parquet"),
    ],
)
def test_scores_every_row_in_order(
    toy: Settings, tmp_path: Path, executor: str, suffix: str, out: str
) -> None:
    source, frame = _input(tmp_path, suffix)
    target = tmp_path / f"scored{out}"
    seen: list[tuple[int, int | None]] = []
    result = predict_file(
        toy,
        "toy@champion",
        source,
        target,
        chunk_rows=500,
        executor=executor,
        max_workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.rows, result.model_version, result.chunks) == (ROWS, "toy@1", 6)
    assert [done for done, _ in seen] == list(range(500, ROWS + 1, 500))
    if suffix == ".parquet":
        assert seen[-1][1] == ROWS
    scored = pd.read_parquet(target) if out == ".parquet" else pd.read_csv(target)
    assert list(scored.columns) == [
        "row",
        "b",
        "a",
        "prediction",
        "proba_0",
        "proba_1",
        "model_version",
    ]
    assert scored["row"].tolist() == list(range(ROWS))
    assert set(scored["model_version"]) == {"toy@1"}
    prediction, proba = _expected(toy, frame)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), prediction)
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]].to_numpy(), proba)
    assert not list(tmp_path.glob(".*.partial"))


def test_missing_columns_and_bad_files_are_named(toy: Settings, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"a": [1.0, 2.0], "c": [3, 4]}).to_csv(source, index=False)
    target = tmp_path / "out.parquet"
    with pytest.raises(ValidationError, match=r"in\.csv: missing column b that toy@1"):
        predict_file(toy, "toy", source, target)
    assert not target.exists() and not list(tmp_path.glob(".*.partial"))

    clash = tmp_path / "clash.csv"
    pd.DataFrame({"a": [1.0], "b": [2.0], "prediction": [0]}).to_csv(clash, index=False)
    with pytest.raises(ValidationError, match="prediction would clash"):
        predict_file(toy, "toy", clash, target)

    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match=r"broken\.parquet: not a readable parquet file"):
        predict_file(toy, "toy", broken, target)
    with pytest.raises(ValidationError, match="output files are .parquet or .csv"):
        predict_file(toy, "toy", source, tmp_path / "out.xlsx")
    with pytest.raises(NotFoundError, match="does not exist"):
        predict_file(toy, "toy", tmp_path / "nope.csv", target)
    with pytest.raises(NotFoundError):
        predict_file(toy, "ghost@1", source, target)


def test_cli_predict(toy: Settings, tmp_path: Path) -> None:
    from loopml.cli import app

    source, _ = _input(tmp_path)
    target = tmp_path / "scored.csv"
    args = ["--home", str(toy.home), "--db-url", toy.db_url, "--artifacts-url", toy.artifacts_url]
    result = CliRunner().invoke(
        app,
        [*args, "predict", "toy", "--input", str(source), "--output", str(target), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["model_version"], report["chunks"]) == (ROWS, "toy@1", 1)
    assert len(pd.read_csv(target)) == ROWS

    bad = CliRunner().invoke(
        app, [*args, "predict", "toy", "--input", str(source), "--output", str(tmp_path / "x.txt")]
    )
    assert bad.exit_code == 1
