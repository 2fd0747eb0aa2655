"""What both drift sides share: the input paths, peak memory, and the figures they emit.

Standard library only: it runs under the project interpreter and under Evidently's.
Peak memory is the side process's own high-water mark (``VmHWM``, read at the end),
taken the same way on both sides; ``baseline_mb`` is the same figure after the imports.
"""

from __future__ import annotations

import platform
import resource
import sys
from pathlib import Path
from typing import Any

__all__ = ["Inputs", "base_figures", "expected_drifted", "peak_mb"]


def peak_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux: ``VmHWM``, the high-water mark of this program's memory since it started.
    Not ``ru_maxrss``, which a child inherits from the process that forked it (a side
    would report the harness's memory, a helper process its parent's).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


class Inputs:
    """The Parquet files of one bench run and its config."""

    def __init__(self, config: dict[str, Any]) -> None:
        folder = Path(config["inputs_dir"])
        self.reference = folder / "reference.parquet"
        self.current = folder / "current.parquet"
        self.repeats = int(config.get("repeats", 3))
        self.config = config


def expected_drifted(config: dict[str, Any]) -> list[str]:
    """The columns the generator shifted."""
    return [f"f{i:02d}" for i in range(int(config["shifted_columns"]))]


def base_figures(package: str, version: str) -> dict[str, Any]:
    return {"package": package, "version": version, "python": platform.python_version()}
