"""Drift workloads on Evidently; runs under its interpreter (bench/.venv-evidently).

``python -m bench.sides.drift_evidently WORKDIR CONFIG_JSON``: both Parquet files read into
pandas DataFrames (Evidently takes DataFrames) and a ``Report([DataDriftPreset()])`` run on
them with its defaults, results read back with ``snapshot.dict()``; all of it timed once.
Evidently keeps no reference profile, so its time for the current window alone
(``drift_current``) is that same full run. Figures on the last stdout line.
"""

from __future__ import annotations

import time
from typing import Any

import evidently
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

from bench.sides._common import emit, parse_args
from bench.sides._drift import Inputs, base_figures, expected_drifted, peak_mb


def _drifted(snapshot: dict[str, Any]) -> tuple[list[str], dict[str, float], list[str]]:
    """Drifted columns, each column's score and the methods, from ``snapshot.dict()``."""
    drifted, scores, methods = [], {}, set()
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        column, method = config["column"], config["method"]
        value, threshold = float(metric["value"]), float(config["threshold"])
        is_p_value = "p_value" in method.replace("-", "_").lower()
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(column)
        scores[column] = value
        methods.add(method)
    return drifted, scores, sorted(methods)


def main() -> None:
    args = parse_args()
    inputs = Inputs(args.config)
    figures = base_figures("evidently", evidently.__version__)
    baseline = peak_mb()

    started = time.perf_counter()
    reference = pd.read_parquet(inputs.reference)
    current = pd.read_parquet(inputs.current)
    read = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    found = snapshot.dict()
    done = time.perf_counter()
    seconds = done - started
    figures["drift_time"] = {
        "seconds": seconds,
        "read_seconds": read - started,
        "report_seconds": done - read,
    }
    figures["drift_current"] = {"seconds": seconds, "note": "no stored reference: a full run"}
    figures["drift_memory"] = {"peak_mb": peak_mb(), "baseline_mb": baseline}
    drifted, scores, methods = _drifted(found)
    figures["drifted"] = drifted
    figures["expected_drifted"] = expected_drifted(args.config)
    figures["scores"] = scores
    figures["method"] = methods
    emit(figures)


if __name__ == "__main__":
    main()
