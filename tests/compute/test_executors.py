"""The in-process and process-pool executors, time limits, and the executor factory."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.compute import (
    EXECUTOR_KINDS,
    LocalExecutor,
    ProcessExecutor,
    Resources,
    StepTimeoutError,
    call_with_timeout,
    create_executor,
)
from loopml.core import BackendError, LoopmlError, ValidationError


class StepFailed(Exception):
    """An exception class of the test module: it must survive the trip back."""


def double(x: int) -> int:
    return 2 * x


def fail(message: str) -> None:
    raise StepFailed(message)


def reject(value: int) -> None:
    raise ValueError(f"bad value {value}")


def wait_at(barrier: Any) -> int:
    """Returns only once a second task waits at the same barrier (else BrokenBarrierError)."""
    return int(barrier.wait(30))


def whoami() -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(max_workers=2) as executor:
        yield executor


# --- LocalExecutor -----------------------------------------------------------------------


def test_local_runs_in_this_process_and_thread() -> None:
    with LocalExecutor() as executor:
        future = executor.submit(lambda: (os.getpid(), threading.get_ident()))
        assert future.done()
        assert future.result() == (os.getpid(), threading.get_ident())
        assert executor.submit(double, 21, resources=Resources(cpus=4), name="d").result() == 42
    assert (executor.kind, executor.in_process, executor.max_parallel) == ("local", True, 1)


def test_local_puts_exceptions_in_the_future() -> None:
    future = LocalExecutor().submit(fail, "step broke")
    assert future.done()
    with pytest.raises(StepFailed, match="step broke"):
        future.result()


# --- ProcessExecutor ---------------------------------------------------------------------


def test_process_runs_functions_in_other_processes(pool: ProcessExecutor) -> None:
    assert (pool.kind, pool.in_process, pool.max_parallel) == ("process", False, 2)
    futures = [pool.submit(double, n, name=f"double-{n}") for n in range(6)]
    assert [f.result(timeout=60) for f in futures] == [0, 2, 4, 6, 8, 10]
    assert pool.submit(whoami).result(timeout=60) != os.getpid()


def test_process_runs_lambdas_and_closures(pool: ProcessExecutor) -> None:
    offset = 100

    def add_offset(x: int) -> int:
        return x + offset

    assert pool.submit(add_offset, 1).result(timeout=60) == 101
    assert pool.submit(lambda a, b: a * b, 6, 7).result(timeout=60) == 42


def test_process_propagates_exceptions_with_their_type(pool: ProcessExecutor) -> None:
    with pytest.raises(StepFailed, match="in a worker"):
        pool.submit(fail, "in a worker").result(timeout=60)
    with pytest.raises(ValueError, match="bad value 3"):
        pool.submit(reject, 3).result(timeout=60)


def test_process_runs_independent_tasks_at_the_same_time(pool: ProcessExecutor) -> None:
    # each task blocks at a two-party barrier: both return only if both run at once
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(2)
        futures = [pool.submit(wait_at, barrier) for _ in range(2)]
        assert sorted(f.result(timeout=60) for f in futures) == [0, 1]


def test_process_defaults_to_one_worker_per_cpu() -> None:
    with ProcessExecutor() as executor:
        assert executor.max_parallel == max(1, os.cpu_count() or 1)


# --- call_with_timeout -------------------------------------------------------------------


def sleep_forever(stop: threading.Event | None = None) -> None:
    while stop is None or not stop.is_set():
        time.sleep(0.02)


def test_timeout_interrupts_the_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"timed out after 0\.2 s"):
        call_with_timeout(sleep_forever, 0.2)
    assert time.monotonic() - started < 10
    # the timer is gone: a later call in this thread is not interrupted
    assert call_with_timeout(lambda: time.sleep(0.3) or "done", None) == "done"


def test_timeout_in_another_thread_raises_and_moves_on() -> None:
    stop = threading.Event()
    outcome: dict[str, BaseException] = {}

    def caller() -> None:
        try:
            call_with_timeout(lambda: sleep_forever(stop), 0.2)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(30)
    stop.set()  # let the abandoned helper thread end
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), StepTimeoutError)


def test_timeout_passes_results_and_errors_through() -> None:
    assert call_with_timeout(lambda: 42, 10) == 42
    with pytest.raises(StepFailed, match="inside"):
        call_with_timeout(lambda: fail("inside"), 10)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(call_with_timeout(lambda: 7, 10)))
    thread.start()
    thread.join(30)
    assert results == [7]


def test_timeout_keeps_an_enclosing_timer() -> None:
    def inner_limit_then_sleep() -> str:
        call_with_timeout(lambda: None, 10)  # must not cancel the enclosing 0.3 s limit
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.02)
        return "never interrupted"

    with pytest.raises(StepTimeoutError, match=r"after 0\.3 s"):
        call_with_timeout(inner_limit_then_sleep, 0.3)


@pytest.mark.parametrize("seconds", [0, -1.5])
def test_timeout_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValidationError, match="must be > 0"):
        call_with_timeout(lambda: 1, seconds)


def test_step_timeout_error_is_a_loopml_error_and_a_timeout_error() -> None:
    assert issubclass(StepTimeoutError, LoopmlError)
    assert issubclass(StepTimeoutError, TimeoutError)


# --- create_executor and Resources ---------------------------------------------------------


def test_create_executor_makes_each_kind() -> None:
    assert EXECUTOR_KINDS == ("local", "process", "ray")
    assert isinstance(create_executor("local"), LocalExecutor)
    executor = create_executor("process", max_workers=1)
    try:
        assert isinstance(executor, ProcessExecutor)
        assert executor.max_parallel == 1
    finally:
        executor.close()


def test_create_executor_names_the_allowed_kinds() -> None:
    with pytest.raises(ValidationError, match=r"local, process, ray.*'nope'"):
        create_executor("nope")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"cpus": -1}, "cpus"), ({"gpus": -0.5}, "gpus"), ({"memory_mb": 0}, "memory_mb")],
)
def test_resources_reject_negative_amounts(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Resources(**kwargs)


def test_resources_defaults() -> None:
    assert Resources() == Resources(cpus=1.0, memory_mb=None, gpus=0.0)


def test_ray_executor_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(BackendError, match=r"loopml\[ray\]"):
        create_executor("ray")


@pytest.mark.parametrize("address", ["ray://127.0.0.1:10001", "127.0.0.1", "host:port"])
def test_ray_executor_wants_a_gcs_address(address: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        create_executor("ray", ray_address=address)
