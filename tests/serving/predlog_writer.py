"""A load generator for the SIGKILL test: appends from several threads and prints each
prediction id only once its future resolved (the acknowledged set). Runs until killed."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from loopml.core import load_settings, now_ms
from loopml.serving import PredictionLog, PredictionRecord, new_prediction_id


def main(home: str, db_url: str, threads: int = 8) -> None:
    settings = load_settings(
        project_dir=Path(home).parent, environ={}, home=home, db_url=db_url, system_metrics=False
    )
    log = PredictionLog(settings, segment_rows=500, segment_interval_s=0.2)
    out = threading.Lock()
    print("ready", flush=True)

    def work(worker: int) -> None:
        i = 0
        while True:
            record = PredictionRecord(
                new_prediction_id(),
                now_ms(),
                f"dep{worker % 2}",
                "churn@3",
                {"worker": worker, "i": i},
                {"p": 0.5},
                1.0,
            )
            pid = log.append(record).result()
            with out:
                sys.stdout.write(pid + "\n")
                sys.stdout.flush()
            i += 1

    for worker in range(threads):
        threading.Thread(target=work, args=(worker,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
