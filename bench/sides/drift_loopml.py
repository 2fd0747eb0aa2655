"""Drift workloads on loopml; runs under the project interpreter with ``src`` on the path.

``python -m bench.sides.drift_loopml WORKDIR CONFIG_JSON``:

- ``drift_time``: from the raw reference Parquet file, as a first run would: profile it
  (``loopml.data.profile``), then ``detect_drift`` streaming the current Parquet file;
- ``drift_memory``: this process's peak memory after that;
- ``drift_current``: the production case, the reference profile stored (JSON on disk, as
  the registry keeps it): load it, then ``detect_drift`` on the current file; the median of
  ``repeats`` runs, in a process of its own (``drift_loopml_current``) whose peak memory is
  reported apart.

Figures on the last stdout line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.sides._common import emit, parse_args
from bench.sides._drift import Inputs, base_figures, expected_drifted, peak_mb
from loopml.data import profile
from loopml.monitoring import detect_drift


def _version() -> str:
    try:
        return metadata.version("loopml")
    except metadata.PackageNotFoundError:
        return "unknown"


def _current_only(workdir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Run ``drift_loopml_current`` in a process of its own (its memory apart); its figures."""
    command = [sys.executable, "-m", "bench.sides.drift_loopml_current", str(workdir)]
    done = subprocess.run(
        [*command, json.dumps(config)], capture_output=True, text=True, check=False
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"drift_loopml_current failed with exit status {done.returncode}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    args = parse_args()
    inputs = Inputs(args.config)
    figures = base_figures("loopml", _version())
    baseline = peak_mb()

    started = time.perf_counter()
    reference = profile(inputs.reference)
    profiled = time.perf_counter()
    result = detect_drift(reference, inputs.current)
    done = time.perf_counter()
    figures["drift_time"] = {
        "seconds": done - started,
        "profile_seconds": profiled - started,
        "detect_seconds": done - profiled,
    }

    stored = args.workdir / "reference-profile.json"
    stored.write_text(json.dumps(reference.to_dict()), encoding="utf-8")
    figures["drift_memory"] = {"peak_mb": peak_mb(), "baseline_mb": baseline}
    current = _current_only(args.workdir, args.config)
    if current.pop("drifted") != result.drifted_features:
        raise SystemExit("a stored profile found other drifted features than a fresh one")
    figures["drift_current"] = current
    figures["drifted"] = result.drifted_features
    figures["expected_drifted"] = expected_drifted(args.config)
    figures["scores"] = {n: f.score for n, f in result.features.items()}
    figures["method"] = sorted({f.method for f in result.features.values()})
    emit(figures)


if __name__ == "__main__":
    main()
