"""Shared fixtures: a fresh store per test on SQLite and, where reachable, PostgreSQL.

PostgreSQL tests read ``LOOPML_TEST_POSTGRES_URL``. Without it they skip with a
visible reason, except on CI (``CI=true``), where a missing or unreachable
PostgreSQL fails them: CI must exercise both databases.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import pytest
import sqlalchemy as sa

from loopml.core import Settings, load_settings

POSTGRES_ENV = "LOOPML_TEST_POSTGRES_URL"


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if _on_ci():
            pytest.fail(f"{POSTGRES_ENV} is not set on CI; the PostgreSQL tests must run there")
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        if _on_ci():
            pytest.fail(f"PostgreSQL at {base} is unreachable on CI: {exc}")
        pytest.skip(f"PostgreSQL at {base} is unreachable: {exc}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database URL, once per supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings on a fresh store of each database, with a temporary artifact folder."""
    return load_settings(
        project_dir=tmp_path,
        environ={},
        home=tmp_path / ".loopml",
        db_url=db_url,
        system_metrics=False,
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite store only (for tests about SQLite itself)."""
    return load_settings(project_dir=tmp_path, environ={}, system_metrics=False)


# --- Ray: one real local cluster per test session, on 127.0.0.1 only ---------------------

RAY_LOOPBACK_ENV = {
    # Ray's single-machine mode: without it Ray swaps 127.0.0.1 for the routable address
    # and listens on every interface (see loopml.compute._ray)
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # said outright: `ray start` turns token auth on by itself once ~/.ray/auth_token exists
    # (ray.init() writes one), and a driver without RAY_AUTH_MODE=token is then refused
    "RAY_AUTH_MODE": "disabled",
}


class RayHead(NamedTuple):
    """A ``ray start --head --block`` process: the cluster's address and the pid whose
    descendants are all of the cluster's processes."""

    address: str
    pid: int
    temp_dir: Path


def _free_loopback_port() -> int:
    # an ephemeral port, so never inside Ray's worker port range (10002-19999)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A 2-CPU Ray head on 127.0.0.1, started with the venv's ``ray`` CLI, stopped after.

    All xdist workers of one test session share it: the first to need it starts it, the
    last to finish stops it (a count in a locked file next to their temp folders). Ray
    tests carry ``xdist_group("ray")`` so that one worker runs them all, but with pytest
    9.2 and pytest-xdist 3.8 ``--dist loadgroup`` does not group (pytest-xdist#1386), so
    the fixture must not rely on it.
    """
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        if _on_ci():
            pytest.fail("the ray CLI is missing on CI; install loopml[dev]")
        pytest.skip("ray is not installed (pip install 'loopml[ray]')")
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    state_path, lock_path = shared / "ray-head.json", shared / "ray-head.lock"
    with _exclusive(lock_path):
        state = _ray_state(state_path)
        if state is None or not psutil.pid_exists(state["pid"]):
            state = {**_start_ray_head(ray_cli)._asdict(), "users": 0}
        state["users"] += 1
        state_path.write_text(json.dumps(state, default=str))
    try:
        yield RayHead(state["address"], state["pid"], Path(state["temp_dir"]))
    finally:
        with _exclusive(lock_path):
            state = _ray_state(state_path) or {**state, "users": 1}
            state["users"] -= 1
            if state["users"] > 0:
                state_path.write_text(json.dumps(state))
            else:
                _stop_ray_head(state["pid"])
                shutil.rmtree(state["temp_dir"], ignore_errors=True)
                state_path.unlink(missing_ok=True)


_RAY_HEADS: dict[int, subprocess.Popen[bytes]] = {}  # the heads this process started


def _start_ray_head(ray_cli: Path) -> RayHead:
    """``ray start --head --block`` in its own session; returns once the node is up."""
    # a short temp dir: Ray's socket paths must stay under ~107 characters
    temp_dir = Path(tempfile.mkdtemp(prefix="loopml-ray-", dir="/tmp"))
    port = _free_loopback_port()
    log_path = temp_dir / "ray-start.log"
    command = [
        str(ray_cli),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--num-gpus=0",
        "--object-store-memory=268435456",
        "--include-dashboard=false",
        "--dashboard-host=127.0.0.1",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **RAY_LOOPBACK_ENV},
            start_new_session=True,
        )
    _RAY_HEADS[head.pid] = head
    deadline = time.monotonic() + 120
    while b"Ray runtime started" not in log_path.read_bytes():
        if head.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-3000:]
            _stop_ray_head(head.pid)
            shutil.rmtree(temp_dir, ignore_errors=True)
            pytest.fail(f"ray start failed (exit {head.poll()}):\n{tail}")
        time.sleep(0.2)
    return RayHead(f"127.0.0.1:{port}", head.pid, temp_dir)


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still running after ``timeout`` (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _stop_ray_head(pid: int) -> None:
    """SIGTERM to the head, which drains and stops its node; then SIGKILL to whatever
    of its process tree is left. Not ``ray stop --force``: that kills every Ray process
    of this user on the machine, not only this cluster's."""
    try:
        head = psutil.Process(pid)
        family = [head, *head.children(recursive=True)]
        head.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        family = []
    if _wait_gone(family[:1], 30):
        family[0].kill()
    for process in _wait_gone(family, 10):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    if pid in _RAY_HEADS:
        _RAY_HEADS.pop(pid).wait(timeout=10)  # reap our own child


@pytest.fixture(scope="session")
def ray_cluster(ray_head: RayHead) -> str:
    """The address ("127.0.0.1:<port>") of a real local Ray cluster with 2 CPUs, no GPU.

    Mark tests that use it ``@pytest.mark.xdist_group("ray")``; see ``ray_head``.
    """
    return ray_head.address
