"""loopml's production case, in a process of its own: the reference profile stored.

``python -m bench.sides.drift_loopml_current WORKDIR CONFIG_JSON`` (started by
``drift_loopml``, which stored ``WORKDIR/reference-profile.json``): load the profile, run
``detect_drift`` on the current file ``repeats`` times; report the median seconds, the
features found drifted and this process's own peak memory, free of the profiling run's.
"""

from __future__ import annotations

import json
import statistics
import time

from bench.sides._common import emit, parse_args
from bench.sides._drift import Inputs, peak_mb
from loopml.data import DatasetProfile
from loopml.monitoring import detect_drift


def main() -> None:
    args = parse_args()
    inputs = Inputs(args.config)
    stored = args.workdir / "reference-profile.json"
    baseline = peak_mb()
    durations, drifted, rows = [], [], 0
    for _ in range(inputs.repeats):
        started = time.perf_counter()
        loaded = DatasetProfile.from_dict(json.loads(stored.read_text(encoding="utf-8")))
        result = detect_drift(loaded, inputs.current)
        durations.append(time.perf_counter() - started)
        drifted, rows = result.drifted_features, result.n_current
    emit(
        {
            "seconds": statistics.median(durations),
            "all_seconds": durations,
            "repeats": inputs.repeats,
            "rows": rows,
            "peak_mb": peak_mb(),
            "baseline_mb": baseline,
            "drifted": drifted,
        }
    )


if __name__ == "__main__":
    main()
