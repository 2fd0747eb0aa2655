"""Versioning workloads on loopml; runs under the project interpreter with ``src`` on the path.

``python -m bench.sides.versioning_loopml WORKDIR CONFIG_JSON``: ``loopml data add`` as a user
runs it, in a fresh home per repetition (its database created untimed, like ``dvc init``);
then, not part of the ratios, the Python API's ``data.add`` in a fresh home, ``loopml data
ingest`` of a generated CSV (in a home of its own) and ``loopml.data.profile`` of a generated
Parquet file, where this loopml has them. Figures on the last stdout line.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import loopml
import loopml.data
from bench.sides._common import emit, parse_args
from bench.sides._versioning import Inputs, SideFailure, checked, measure, run_cli, settle

LOOPML = str(Path(sysconfig.get_path("scripts")) / "loopml")
CHUNK_ROWS = 1_000_000


def _version() -> str:
    found = getattr(loopml, "__version__", None)
    if isinstance(found, str):
        return found
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:
        return "unknown"


class LoopmlSide:
    """``loopml --home FOLDER/.loopml data add PATH --name NAME``, checked with ``data show``."""

    package = "loopml"
    version = _version()

    def __init__(self) -> None:
        self.home = Path()
        self._probed = False

    def prepare(self, folder: Path) -> Path:
        """A fresh home in ``folder`` whose database is created, like ``dvc init``."""
        if not self._probed:
            probe = run_cli([LOOPML, "data", "add", "--help"], folder)
            if probe.code != 0:
                raise SideFailure(f"`loopml data add` is not available yet: {probe.tail(1)}")
            self._probed = True
        self.home = folder / ".loopml"
        checked([LOOPML, "--home", str(self.home), "db", "upgrade"], folder)
        return folder

    def version_command(self) -> list[str]:
        return [LOOPML, "version"]

    def add_command(self, path: Path, name: str) -> list[str]:
        return [LOOPML, "--home", str(self.home), "data", "add", str(path), "--name", name]

    def stored(self, path: Path, name: str) -> tuple[int, int]:
        """Files and bytes of the newest version ``data show NAME --json`` lists."""
        command = [LOOPML, "--home", str(self.home), "data", "show", name, "--json"]
        shown = checked(command, self.home.parent)
        try:
            # The JSON object, whatever (a progress line, a warning) may come before it.
            document, _ = json.JSONDecoder().raw_decode(shown.stdout[shown.stdout.index("{") :])
            versions = document["versions"]
            newest = max(versions, key=lambda found: found["version"])
            return int(newest["files"]), int(newest["bytes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SideFailure(f"`data show {name} --json` gave {shown.tail()!r}: {exc!r}") from exc


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return round(time.perf_counter() - started, 6)


def _api_adds(workdir: Path, inputs: Inputs) -> dict[str, Any]:
    """The Python API's add of the same staged inputs, in a home of its own.

    ``loopml.data.add(path, name=..., settings=...)`` where it exists, else the catalog's
    ``DataCatalog(settings).add(path, name=...)`` (the catalog, and its store, made untimed).
    """
    settings = loopml.load_settings(project_dir=workdir, home=str(workdir / ".loopml-api"))
    catalog: Any = None
    add = getattr(loopml.data, "add", None)
    if callable(add):
        call = "loopml.data.add(path, name=..., settings=...)"
        add = partial(add, settings=settings)
    elif hasattr(loopml.data, "DataCatalog"):
        call = "loopml.data.DataCatalog(settings).add(path, name=...)"
        catalog = loopml.data.DataCatalog(settings)
        _ = catalog.store  # the catalog opens (and creates) its database lazily: not timed
        add = catalog.add
    else:
        return {"skipped": "neither loopml.data.add nor loopml.data.DataCatalog exists yet"}
    figures: dict[str, Any] = {"call": call}
    try:
        for workload, path, name in (
            ("add_large_file", workdir / inputs.large_file.name, "big"),
            ("add_small_files", workdir / inputs.small_dir.name, "small"),
        ):
            settle(path)
            figures[workload] = {"seconds": _timed(partial(add, path, name=name))}
    finally:
        if catalog is not None:
            catalog.close()
    return figures


def _write_csv(path: Path, rows: int, seed: int) -> None:
    """A flights-like table: date, 4 strings, 2 ints, 3 floats (about 100 bytes a row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    carriers = pa.array(["AA", "DL", "UA", "WN", "B6", "AS", "NK", "F9", "HA", "G4"])
    airports = pa.array(["ATL", "LAX", "ORD", "DFW", "DEN", "JFK", "SFO", "SEA", "LAS", "MCO"])
    writer: pacsv.CSVWriter | None = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            batch = pa.record_batch(
                {
                    "flight_date": pa.array(rng.integers(17_000, 20_000, n), pa.int32()).cast(
                        pa.date32()
                    ),
                    "carrier": carriers.take(rng.integers(0, len(carriers), n)),
                    "flight_number": rng.integers(1, 9_999, n),
                    "tail_number": pa.array([f"N{i:05d}" for i in rng.integers(0, 99_999, n)]),
                    "origin": airports.take(rng.integers(0, len(airports), n)),
                    "dest": airports.take(rng.integers(0, len(airports), n)),
                    "dep_delay": rng.normal(10.0, 30.0, n),
                    "arr_delay": rng.normal(5.0, 35.0, n),
                    "distance": rng.integers(100, 5_000, n),
                    "air_time": rng.uniform(20.0, 600.0, n),
                }
            )
            writer = writer or pacsv.CSVWriter(str(path), batch.schema)
            writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()


def _write_parquet(path: Path, rows: int, columns: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([(f"x{j}", pa.float64()) for j in range(columns)])
    with pq.ParquetWriter(str(path), schema) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            writer.write_table(
                pa.table({f"x{j}": rng.standard_normal(n) for j in range(columns)}, schema=schema)
            )


def _ingest(workdir: Path, config: dict[str, Any]) -> dict[str, Any]:
    if run_cli([LOOPML, "data", "ingest", "--help"], workdir).code != 0:
        return {"skipped": "`loopml data ingest` does not exist yet"}
    rows = int(config["csv_rows"])
    csv = workdir / "flights.csv"
    _write_csv(csv, rows, int(config["seed"]))
    size = settle(csv)
    home = workdir / ".loopml-ingest"
    checked([LOOPML, "--home", str(home), "db", "upgrade"], workdir)
    command = [LOOPML, "--home", str(home), "data", "ingest", csv.name, "--name", "flights"]
    done = checked(command, workdir)
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(done.seconds, 6),
        "rows_per_s": round(rows / done.seconds, 1),
        "mb_per_s": round(size / 1e6 / done.seconds, 1),
        "max_rss_mib": done.max_rss_mib,
    }


def _profile(workdir: Path, config: dict[str, Any]) -> dict[str, Any]:
    profile = getattr(loopml.data, "profile", None)
    if not callable(profile):
        return {"skipped": "loopml.data.profile does not exist yet"}
    rows, columns = int(config["parquet_rows"]), int(config["parquet_columns"])
    parquet = workdir / "wide.parquet"
    _write_parquet(parquet, rows, columns, int(config["seed"]))
    size = settle(parquet)
    return {
        "rows": rows,
        "columns": columns,
        "bytes": size,
        "seconds": _timed(lambda: profile(str(parquet))),
    }


def main() -> None:
    args = parse_args()
    side = LoopmlSide()
    try:
        figures = measure(side, args.config, args.workdir)
    except SideFailure as exc:
        sys.exit(str(exc))
    # loopml-only figures: a failure here is reported, not fatal to the ratios above.
    errors: list[str] = []
    extras: dict[str, Callable[[], dict[str, Any]]] = {
        "api": lambda: _api_adds(args.workdir, Inputs.from_config(args.config)),
        "ingest_csv_1gb": lambda: _ingest(args.workdir, args.config),
        "profile_10m_x_20_s": lambda: _profile(args.workdir, args.config),
    }
    for key, extra in extras.items():
        try:
            figures[key] = extra()
        except Exception as exc:  # any failure of loopml's call, reported with the figures
            figures[key] = {"error": f"{type(exc).__name__}: {exc}"}
            errors.append(f"{key}: {type(exc).__name__}: {exc}")
    figures["errors"] = errors
    emit(figures)


if __name__ == "__main__":
    main()
