"""RayExecutor against a real Ray cluster on 127.0.0.1 (the session's ``ray_cluster``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from loopml.compute import Resources, create_executor
from loopml.compute._ray import RayExecutor
from loopml.core import BackendError, ValidationError
from tests.compute.sockets import bound_sockets, is_loopback

if TYPE_CHECKING:
    from tests.conftest import RayHead

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


class StepFailed(Exception):
    """Defined in the test module: Ray workers must import it, the driver must get it."""


def double(x: int) -> int:
    return 2 * x


def fail(message: str) -> None:
    raise StepFailed(message)


def reject(value: int) -> None:
    raise ValueError(f"bad value {value}")


def refuse() -> None:
    raise ValidationError("the step's input is wrong")


def meet(folder: str, me: str, other: str) -> str:
    """Returns only if the task called ``other`` runs at the same time as this one."""
    Path(folder, me).touch()
    deadline = time.monotonic() + 30
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never ran alongside {me}")
        time.sleep(0.02)
    return me


@pytest.fixture(scope="module")
def executor(ray_cluster: str) -> Iterator[RayExecutor]:
    with RayExecutor(address=ray_cluster) as ray_executor:
        yield ray_executor


def test_tasks_run_on_the_cluster(executor: RayExecutor) -> None:
    assert (executor.kind, executor.in_process, executor.max_parallel) == ("ray", False, 2)
    futures = [executor.submit(double, n, name=f"double-{n}") for n in range(8)]
    assert [f.result(timeout=60) for f in futures] == [2 * n for n in range(8)]
    assert executor.submit(os.getpid).result(timeout=60) != os.getpid()


def test_closures_and_lambdas_travel_by_value(executor: RayExecutor) -> None:
    offset = 100

    def add_offset(x: int) -> int:
        return x + offset

    assert executor.submit(add_offset, 1).result(timeout=60) == 101
    assert executor.submit(lambda a, b: a * b, 6, 7).result(timeout=60) == 42


def test_independent_tasks_run_at_the_same_time(executor: RayExecutor, tmp_path: Path) -> None:
    first = executor.submit(meet, str(tmp_path), "a", "b")
    second = executor.submit(meet, str(tmp_path), "b", "a")
    assert (first.result(timeout=60), second.result(timeout=60)) == ("a", "b")


def test_exceptions_come_back_as_raised(executor: RayExecutor) -> None:
    with pytest.raises(ValueError, match="bad value 3") as caught:
        executor.submit(reject, 3, name="rejecting").result(timeout=60)
    assert type(caught.value) is ValueError
    assert any("rejecting" in note for note in getattr(caught.value, "__notes__", []))
    with pytest.raises(StepFailed, match="in a worker"):
        executor.submit(fail, "in a worker").result(timeout=60)
    with pytest.raises(ValidationError, match="input is wrong"):
        executor.submit(refuse).result(timeout=60)


def test_resources_within_the_cluster_run(executor: RayExecutor) -> None:
    both_cpus = executor.submit(double, 1, resources=Resources(cpus=2), name="wide")
    assert both_cpus.result(timeout=60) == 2
    some_memory = executor.submit(double, 2, resources=Resources(cpus=0.5, memory_mb=64))
    assert some_memory.result(timeout=60) == 4


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(gpus=1), r"gpus=1 but the cluster has gpus=0"),
        (Resources(cpus=3), r"cpus=3 but the cluster has cpus=2"),
        (Resources(memory_mb=10**9), r"memory_mb=1000000000 but the cluster has memory_mb="),
    ],
)
def test_resources_beyond_the_cluster_fail_at_once(
    executor: RayExecutor, resources: Resources, message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ValidationError, match=message):
        executor.submit(double, 1, resources=resources, name="too-big")
    assert time.monotonic() - started < 10


def _command_line(process: psutil.Process) -> str:
    """The process's command line; empty once it has exited (a Ray worker may, meanwhile)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess included
        return ""


def test_every_ray_listener_is_on_loopback(executor: RayExecutor, ray_head: RayHead) -> None:
    # run a few tasks first, so that worker processes (which listen too) exist
    assert [f.result(timeout=60) for f in [executor.submit(double, n) for n in range(4)]]
    cluster = psutil.Process(ray_head.pid).children(recursive=True)
    names = " ".join(_command_line(p) for p in cluster)
    assert "gcs_server" in names and "raylet" in names
    sockets = bound_sockets([*cluster, psutil.Process()])
    ports = {port for _, _, port in sockets}
    assert int(ray_head.address.rsplit(":", 1)[1]) in ports  # the GCS was seen
    assert len(sockets) >= 4
    exposed = [s for s in sockets if not is_loopback(s[1])]
    assert exposed == [], f"Ray listens beyond loopback: {exposed}"


def test_create_executor_connects_and_caps_parallelism(
    executor: RayExecutor, ray_cluster: str
) -> None:
    # the module's executor is connected too: both share this process's one Ray connection
    other = create_executor("ray", ray_address=ray_cluster, max_workers=1)
    try:
        assert other.max_parallel == 1
        assert other.submit(double, 5).result(timeout=60) == 10
    finally:
        other.close()
    assert executor.submit(double, 6).result(timeout=60) == 12  # still connected
    with pytest.raises(BackendError, match="already using Ray"):
        RayExecutor()  # a second, private cluster cannot join this process
