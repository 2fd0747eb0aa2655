"""Versioning: loopml against DVC on adding one large file and a folder of small files.

Both sides version the very same input files: this suite generates them once per bench run,
when :func:`bench._suite.run_suite` asks for its config, in a temporary folder deleted when
the bench exits. Each side copies them into its own folder before timing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._env import BENCH_DIR, PeerEnv
from bench._log import log
from bench._suite import Figures, Side, Suite

__all__ = ["DVC_PEER", "VERSIONING"]

DVC_PEER = PeerEnv(
    name="dvc",
    requirements=BENCH_DIR / "requirements-dvc.txt",
    venv=BENCH_DIR / ".venv-dvc",
)
WORKLOADS = ("add_large_file", "add_small_files")
_CHUNK = 16 << 20


def generate_inputs(folder: Path, config: dict[str, Any]) -> None:
    """``big.bin`` (random bytes) and ``small/`` (``small_files`` random files) in ``folder``."""
    started = time.perf_counter()
    remaining = int(config["large_file_bytes"])
    with open(folder / "big.bin", "wb") as stream:
        while remaining > 0:
            chunk = os.urandom(min(_CHUNK, remaining))
            stream.write(chunk)
            remaining -= len(chunk)
    small = folder / "small"
    small.mkdir()
    size = int(config["small_file_bytes"])
    for i in range(int(config["small_files"])):
        (small / f"part-{i:05d}.bin").write_bytes(os.urandom(size))
    log(f"versioning: inputs generated in {folder} in {time.perf_counter() - started:.1f} s")


class VersioningSuite(Suite):
    """A :class:`Suite` whose scaled config also carries freshly generated shared inputs."""

    __slots__ = ()

    def scaled_config(self, scale: float) -> dict[str, Any]:
        config = super().scaled_config(scale)
        folder = Path(tempfile.mkdtemp(prefix="loopml-bench-versioning-inputs-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        generate_inputs(folder, config)
        config["inputs_dir"] = str(folder)
        return config


def check(loopml: Figures, peer: Figures) -> list[str]:
    """Each side recorded every file and byte it was given; loopml's extras did not fail."""
    errors = [f"loopml: {error}" for error in loopml.get("errors", [])]
    for figures in (loopml, peer):
        for workload in WORKLOADS:
            found = figures[workload]
            if found["stored_ok"]:
                continue
            expected = f"expected {found['files']} files, {found['bytes']} bytes"
            if "stored_error" in found:
                got = f"could not be checked ({expected}): {found['stored_error']}"
            else:
                got = f"recorded {found['stored_files']} files, {found['stored_bytes']} bytes; "
                got += expected
            errors.append(f"{workload}: {figures['package']} {got}")
    return errors


VERSIONING = VersioningSuite(
    name="versioning",
    summary="add one 1 GiB file; add a folder of 10,000 x 10 KiB files (CLI, as a subprocess)",
    peer="dvc",
    loopml_side=Side("bench.sides.versioning_loopml"),
    peer_side=Side(
        "bench.sides.versioning_dvc",
        env=DVC_PEER,
        # No network: analytics off (also set in the repo's config), no update check.
        extra_env={"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"},
    ),
    config={
        "large_file_bytes": 1 << 30,
        "small_files": 10_000,
        "small_file_bytes": 10 << 10,
        "csv_rows": 10_000_000,
        "parquet_rows": 10_000_000,
        "parquet_columns": 20,
        "seed": 20240601,
        "repeats": 3,
    },
    goals={"add_large_file": 3.0, "add_small_files": 3.0},
    scalable=("large_file_bytes", "small_files", "csv_rows", "parquet_rows"),
    check=check,
)
