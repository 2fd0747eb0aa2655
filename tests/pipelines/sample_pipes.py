"""Pipelines the tests run. Each step appends its name to ``calls.txt`` in ``workdir``,
so a test can count real executions, whichever process ran them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from loopml.pipelines import current_step, dataset, pipeline, step


def note(workdir: str, name: str) -> None:
    with open(Path(workdir) / "calls.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{name} {os.getpid()}\n")


def calls(workdir: str | Path) -> list[str]:
    path = Path(workdir) / "calls.txt"
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()]


@step
def load(workdir: str, n: int) -> list:
    note(workdir, "load")
    print(f"loading {n} rows")
    return list(range(n))


@step
def double(workdir: str, values: list) -> list:
    note(workdir, "double")
    return [v * 2 for v in values]


@step
def total(workdir: str, values: list) -> int:
    note(workdir, "total")
    return sum(values)


@step
def count(workdir: str, values: list) -> int:
    note(workdir, "count")
    return len(values)


@step(outputs=["small", "large"])
def partition(workdir: str, values: list, cut: int):
    note(workdir, "partition")
    return [v for v in values if v < cut], [v for v in values if v >= cut]


@step
def report(workdir: str, doubled_total: int, size: int, small: list, large: list) -> dict:
    note(workdir, "report")
    return {"total": doubled_total, "size": size, "small": len(small), "large": len(large)}


@pipeline
def numbers(workdir: str, n: int = 10, cut: int = 5):
    """load -> double -> total, load -> count, load -> partition; all -> report."""
    values = load(workdir, n)
    doubled = double(workdir, values)
    small, large = partition(workdir, values, cut)
    report(workdir, total(workdir, doubled), count(workdir, values), small, large)


@step(retries=2, retry_backoff_s=0.01)
def flaky(workdir: str, fail_times: int) -> str:
    note(workdir, "flaky")
    if calls(workdir).count("flaky") <= fail_times:
        raise RuntimeError("flaky failure")
    return "ok"


@pipeline
def retrying(workdir: str, fail_times: int = 2):
    flaky(workdir, fail_times)


@step
def gate(workdir: str, values: list, broken_flag: str) -> list:
    note(workdir, "gate")
    if Path(broken_flag).exists():
        raise ValueError(f"gate is broken while {broken_flag} exists")
    return values


@pipeline
def branchy(workdir: str, broken_flag: str, n: int = 4):
    """load feeds a gate that can fail and an independent count."""
    values = load(workdir, n)
    opened = gate(workdir, values, broken_flag)
    total(workdir, double(workdir, opened))
    count(workdir, values)


@step(timeout_s=0.5)
def sleepy(workdir: str, seconds: float) -> str:
    note(workdir, "sleepy")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return "woke"


@pipeline
def slow(workdir: str, seconds: float = 5.0):
    sleepy(workdir, seconds)


@step
def describe(workdir: str, frame: pd.DataFrame) -> pd.DataFrame:
    note(workdir, "describe")
    return frame.describe()


@step
def tracked(workdir: str, summary: pd.DataFrame) -> float:
    note(workdir, "tracked")
    mean = float(summary.loc["mean", "x"])
    with current_step().start_run() as run:
        run.log_metric("mean_x", mean)
    return mean


@pipeline
def on_data(workdir: str):
    tracked(workdir, describe(workdir, dataset("points")))


@step(cache=False)
def always(workdir: str) -> int:
    note(workdir, "always")
    return 1


@pipeline
def uncached(workdir: str):
    always(workdir)


@step
def bump(value: int) -> int:
    return value + 1


@pipeline
def chain(start: int = 0):
    """20 tiny steps in a row. Each input differs, so each step has its own cache key."""
    value = bump(start)
    for _ in range(19):
        value = bump(value)


@step
def make_rows() -> dict:
    return {"rows": [1, 2, 3]}


@step
def append_99(data: dict) -> int:
    data["rows"].append(99)  # changes its own input in place
    return sum(data["rows"])


@step
def sum_rows(data: dict) -> int:
    return sum(data["rows"])


@pipeline
def shared_input():
    """Two consumers of one output; the first changes its input in place."""
    rows = make_rows()
    append_99(rows)
    sum_rows(rows)


@step
def crash(workdir: str) -> int:
    note(workdir, "crash")
    os._exit(3)  # a worker dying outright, as an out-of-memory kill would


@pipeline
def crashing(workdir: str):
    crash(workdir)
    count(workdir, load(workdir, 3))


@step
def half(value: int) -> float:
    return value // 2  # an int where the annotation says float


@step
def tagged(tag: str | None) -> str:
    return f"{type(tag).__name__}:{tag}"


@pipeline
def typed(value: int = 4, tag: str | None = None):
    half(value)
    tagged(tag)


@step(timeout_s=30)
def who_am_i() -> str:
    return current_step().name


@pipeline
def introspect():
    who_am_i()
