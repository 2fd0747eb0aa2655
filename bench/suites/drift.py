"""Drift: loopml against Evidently's data drift report on the same Parquet files.

The reference (1,000,000 x 20 numeric columns) and the current window (the same size, with
a shift in some columns) are generated once per bench run, seeded, as Parquet files in a
temporary folder deleted when the bench exits; both sides read those files. Each side
reports the features it found drifted, and the check compares them.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._env import BENCH_DIR, PeerEnv
from bench._log import log
from bench._suite import Figures, Side, Suite

__all__ = ["DRIFT", "EVIDENTLY_PEER", "generate_inputs"]

EVIDENTLY_PEER = PeerEnv(
    name="evidently",
    requirements=BENCH_DIR / "requirements-evidently.txt",
    venv=BENCH_DIR / ".venv-evidently",
)
_ROW_GROUP = 131_072


def _write(path: Path, rows: int, columns: int, shifted: int, seed: int) -> None:
    """``columns`` float columns ``f00..``: normal, lognormal, uniform and exponential in
    turn, each with its own location and scale; the first ``shifted`` move by a quarter of
    a standard deviation (and spread 10% wider) when ``shifted`` > 0."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([(f"f{i:02d}", pa.float64()) for i in range(columns)])
    with pq.ParquetWriter(path, schema) as writer:
        done = 0
        while done < rows:
            size = min(_ROW_GROUP, rows - done)
            arrays = []
            for i in range(columns):
                moved = i < shifted
                loc, scale = 10.0 * i, 1.0 + i % 5
                match i % 4:
                    case 0:
                        values = rng.normal(loc, scale, size)
                    case 1:
                        values = loc + scale * rng.lognormal(0.0, 0.5, size)
                    case 2:
                        values = rng.uniform(loc, loc + 3.5 * scale, size)
                    case _:
                        values = loc + rng.exponential(scale, size)
                if moved:  # std of each kind is about `scale`; shift by a quarter of it
                    values = loc + (values - loc) * 1.1 + 0.25 * scale
                arrays.append(pa.array(values))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            done += size


def generate_inputs(folder: Path, config: dict[str, Any]) -> None:
    """``reference.parquet`` and ``current.parquet`` in ``folder``."""
    started = time.perf_counter()
    columns, seed = int(config["columns"]), int(config["seed"])
    _write(folder / "reference.parquet", int(config["reference_rows"]), columns, 0, seed)
    _write(
        folder / "current.parquet",
        int(config["current_rows"]),
        columns,
        int(config["shifted_columns"]),
        seed + 1,
    )
    log(f"drift: inputs generated in {folder} in {time.perf_counter() - started:.1f} s")


class DriftSuite(Suite):
    """A :class:`Suite` whose scaled config also carries freshly generated Parquet inputs."""

    __slots__ = ()

    def scaled_config(self, scale: float) -> dict[str, Any]:
        config = super().scaled_config(scale)
        folder = Path(tempfile.mkdtemp(prefix="loopml-bench-drift-inputs-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        generate_inputs(folder, config)
        config["inputs_dir"] = str(folder)
        return config


def check(loopml: Figures, peer: Figures) -> list[str]:
    """Both sides found the same drifted features, and each shifted column among them."""
    errors = []
    if sorted(loopml["drifted"]) != sorted(peer["drifted"]):
        errors.append(
            f"drifted features differ: loopml {sorted(loopml['drifted'])}, "
            f"{peer['package']} {sorted(peer['drifted'])}"
        )
    expected = sorted(loopml["expected_drifted"])
    if sorted(loopml["drifted"]) != expected:
        errors.append(f"loopml found {sorted(loopml['drifted'])} drifted; shifted: {expected}")
    return errors


DRIFT = DriftSuite(
    name="drift",
    summary="data drift of 1,000,000 x 20 numeric columns against a reference of the same size",
    peer="evidently",
    loopml_side=Side("bench.sides.drift_loopml"),
    peer_side=Side(
        "bench.sides.drift_evidently",
        env=EVIDENTLY_PEER,
        extra_env={"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"},
    ),
    config={
        "reference_rows": 1_000_000,
        "current_rows": 1_000_000,
        "columns": 20,
        "shifted_columns": 5,
        "seed": 20240601,
        "repeats": 3,
    },
    goals={"drift_time": 20.0, "drift_memory": 5.0},
    max_seconds={"drift_current": 1.0},
    measures={"drift_memory": "peak_mb"},
    scalable=("reference_rows", "current_rows"),
    check=check,
)
