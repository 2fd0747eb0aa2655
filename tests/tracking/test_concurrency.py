"""Several processes logging to one SQLite store at once lose nothing and see no lock errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loopml.core import load_settings
from loopml.tracking import Client

WRITER = """
import sys
from loopml.core import load_settings
from loopml.tracking import Client

home, worker = sys.argv[1], int(sys.argv[2])
client = Client(load_settings(home=home, flush_interval_s=0.01, system_metrics=False))
for r in range(10):
    with client.start_run("shared", name=f"w{worker}-r{r}") as run:
        for step in range(200):
            run.log_metric("loss", float(step), step=step)
            if step % 50 == 0:
                run.flush()
client.close()
print("done")
"""


@pytest.mark.slow
def test_four_processes_log_to_one_sqlite_store(tmp_path: Path) -> None:
    home = tmp_path / ".loopml"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(home), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "locked" not in err.lower()
        assert out.strip() == "done"
    client = Client(load_settings(home=home, system_metrics=False))
    runs = client.search_runs("shared")
    assert len(runs) == 40
    for run in runs:
        assert len(client.get_metric_history(run.id, "loss")) == 200
    client.close()
