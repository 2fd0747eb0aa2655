"""RayExecutor() without an address: a private Ray cluster on 127.0.0.1 for its lifetime.

Runs in the "ray" xdist group after test_ray.py, once no executor holds this process's
Ray connection (one process talks to one Ray cluster).
"""

from __future__ import annotations

import os
import socket
import time

import psutil
import pytest

from loopml.compute import Resources
from loopml.compute._ray import RayExecutor
from loopml.core import BackendError, ValidationError
from tests.compute.sockets import bound_sockets, is_loopback

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def square(x: int) -> int:
    return x * x


def test_private_cluster_starts_on_loopback_and_stops() -> None:
    import ray

    env_before = os.environ.get(SINGLE_NODE_ENV)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with RayExecutor(num_cpus=1) as executor:
        assert ray.is_initialized()
        assert executor.max_parallel == 1
        assert executor.submit(square, 7).result(timeout=60) == 49
        with pytest.raises(ValidationError, match="cpus=2 but the cluster has cpus=1"):
            executor.submit(square, 1, resources=Resources(cpus=2))
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "gcs_server" in names and "raylet" in names
        sockets = bound_sockets([*started, psutil.Process()])
        assert len(sockets) >= 4
        exposed = [s for s in sockets if not is_loopback(s[1])]
        assert exposed == [], f"Ray listens beyond loopback: {exposed}"
    assert not ray.is_initialized()
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], f"still running after close(): {alive}"
    assert os.environ.get(SINGLE_NODE_ENV) == env_before
    executor.close()  # closing twice is harmless
    with pytest.raises(BackendError, match="closed"):
        executor.submit(square, 2)


def test_unreachable_address_fails_fast() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        RayExecutor(address=f"127.0.0.1:{port}")
    assert time.monotonic() - started < 15
