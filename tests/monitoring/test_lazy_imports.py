"""The drift engine imports without the monitor's heavy dependencies."""

from __future__ import annotations

import subprocess
import sys

import loopml.monitoring


def test_drift_engine_does_not_import_the_store_server_or_prometheus() -> None:
    script = (
        "import sys\n"
        "from loopml.monitoring import DriftSketch, compute_drift, detect_drift\n"
        "heavy = [m for m in ('sqlalchemy', 'fastapi', 'prometheus_client', 'duckdb') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_every_exported_name_resolves() -> None:
    for name in loopml.monitoring.__all__:
        assert getattr(loopml.monitoring, name) is not None
