"""Run tasks on a Ray cluster: an existing one, or a private one on 127.0.0.1.

``RayExecutor(address="127.0.0.1:6379")`` (or ``"auto"``) connects to a running
cluster and ``close()`` disconnects, leaving the cluster up. ``RayExecutor()`` starts a
cluster for this process, without dashboard or usage stats, and ``close()`` stops it.
Ray is optional: ``pip install 'loopml[ray]'``; this module imports it only when an
executor is made.

**Loopback only.** On Linux Ray rewrites ``127.0.0.1`` to the machine's routable
address (even ``--node-ip-address=127.0.0.1`` is replaced), and its gRPC servers (GCS, raylet,
object manager, workers) then listen on every interface. Ray keeps a node on loopback
only in its single-machine mode, the default on macOS and Windows, which the
environment variable ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` turns on everywhere. In
that mode, with the node IP ``127.0.0.1``, every listener (GCS, raylet, object manager,
workers, runtime-env agent, dashboard agent, metrics exporter, client server) binds
127.0.0.1. The variable must be set for ``ray start`` *and* for every driver that
connects, or the driver looks for the cluster at the routable address and waits
forever. A cluster for loopml on one machine is therefore started as::

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head \\
        --node-ip-address=127.0.0.1 --port=6379 \\
        --include-dashboard=false --dashboard-host=127.0.0.1 --disable-usage-stats

(the port must lie outside Ray's worker port range, 10002-19999). This executor sets
the mode itself (the variable, and Ray's constant if Ray is already imported) when it
starts its own cluster, and when ``address`` is a loopback address that answers on
loopback only; it is undone when the last executor closes. Clusters reachable on a
routable address are left to Ray's ordinary behaviour.

**Tasks.** The function and its arguments are cloudpickled by the executor and
unpickled on the worker after the driver's ``sys.path`` entries are put in front of the
worker's, so functions from test modules, scripts and ``__main__`` work and modules
next to them import. Each task asks Ray for ``Resources`` as ``num_cpus``, ``num_gpus``
and ``memory`` (bytes); a request larger than the whole cluster is refused at submit
time with :class:`~loopml.core.ValidationError` instead of waiting forever. Ray does
not retry failed tasks here (``max_retries=0``): retrying is the pipeline's decision.
An exception raised by the task comes out of ``future.result()`` as itself (Ray's
``RayTaskError`` wrapper is removed; the remote traceback is attached as a note);
Ray's own failures (a worker died, an object was lost) come out as
:class:`~loopml.core.BackendError`.

**Token auth.** Recent Ray (2.60 here) turns its token authentication on for a cluster that
``ray.init()`` starts, writing ``~/.ray/auth_token``; this executor keeps that default.
Once the file exists, ``ray start`` turns token auth on too, and a driver then needs
``RAY_AUTH_MODE=token``; start a cluster with ``RAY_AUTH_MODE=disabled`` (or ``token``)
to choose explicitly.

Ray's loggers are set to WARNING so that start-up chatter stays out of the terminal,
while the tasks' own stdout and stderr still reach the driver (``log_to_driver``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

import cloudpickle

from loopml.compute._executor import Resources
from loopml.core import BackendError, LoopmlError, ValidationError

__all__ = ["RayExecutor"]

_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"
_AUTH_MODE_ENV = "RAY_AUTH_MODE"  # ray.init() sets it when it turns token auth on
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_CONNECT_TIMEOUT_S = 5.0
_TOTALS_MAX_AGE_S = 5.0
# loopml's names for the Ray resources a task can ask for
_RESOURCE_NAMES = {"CPU": "cpus", "GPU": "gpus", "memory": "memory_mb"}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "the ray executor needs Ray, which is not installed: pip install 'loopml[ray]'"
        ) from exc
    return ray


def _task_runner() -> Callable[[bytes, list[str]], Any]:
    """The function every Ray task runs. Made in a closure so that cloudpickle ships it
    by value: a worker needs neither loopml nor the caller's modules importable before
    it has the caller's ``sys.path``."""

    def run_task(payload: bytes, sys_path: list[str]) -> Any:
        import sys as worker_sys

        import cloudpickle as worker_cloudpickle

        for entry in reversed(sys_path):
            if entry not in worker_sys.path:
                worker_sys.path.insert(0, entry)
        fn, args = worker_cloudpickle.loads(payload)
        return fn(*args)

    return run_task


def _split_address(address: str) -> tuple[str, int]:
    if "://" in address:
        raise ValidationError(
            f"ray address must be the cluster's GCS address host:port (Ray Client "
            f"addresses are not supported); got {address!r}"
        )
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise ValidationError(f"ray address must be host:port or 'auto'; got {address!r}")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _routable_ip() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            ip: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if _is_loopback(ip) else ip


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _Session:
    """This process's one connection to Ray, shared by every executor in it.

    Ray keeps one global connection per process, so executors count themselves in and
    out; the last one out disconnects (and stops the cluster if it was started here).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.target: str | None = None  # "local", the address, or "external"
        self.owned = False
        self.undo: list[Callable[[], None]] = []

    def acquire(self, ray: Any, address: str | None, num_cpus: int | None) -> None:
        target = "local" if address is None else address
        with self.lock:
            if self.users == 0 and ray.is_initialized():
                # someone called ray.init() themselves: use it, never shut it down
                self.target, self.owned = "external", False
            elif self.users == 0:
                self._connect(ray, address, num_cpus)
                self.target, self.owned = target, True
            elif self.target not in ("external", target):
                raise BackendError(
                    f"this process is already using Ray ({self.target}); one process "
                    f"talks to one Ray cluster, so it cannot also use {target}"
                )
            self.users += 1

    def release(self, ray: Any) -> None:
        with self.lock:
            self.users -= 1
            if self.users > 0:
                return
            try:
                if self.owned:
                    ray.shutdown()
            finally:
                for undo in reversed(self.undo):
                    undo()
                self.undo.clear()
                self.target, self.owned = None, False

    def _connect(self, ray: Any, address: str | None, num_cpus: int | None) -> None:
        common: dict[str, Any] = {
            "logging_level": logging.WARNING,
            "configure_logging": True,
            "log_to_driver": True,
        }
        try:
            if address is None:
                self._single_node_mode(ray)
                self._set_env(_USAGE_STATS_ENV, os.environ.get(_USAGE_STATS_ENV, "0"))
                self._set_env(_AUTH_MODE_ENV, None)
                ray.init(
                    address="local",  # never RAY_ADDRESS: this executor owns its cluster
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    dashboard_host="127.0.0.1",
                    _node_ip_address="127.0.0.1",
                    **common,
                )
                return
            resolved = self._resolve(ray, address)
            host, port = _split_address(resolved)
            if not _answers(host, port, _CONNECT_TIMEOUT_S):
                raise BackendError(f"no Ray cluster answers at {resolved}")
            if _is_loopback(host):
                routable = _routable_ip()
                if routable is None or not _answers(routable, port, 1.0):
                    self._single_node_mode(ray)
            ray.init(address=resolved, **common)
        except BaseException as exc:
            for undo in reversed(self.undo):
                undo()
            self.undo.clear()
            if isinstance(exc, LoopmlError | KeyboardInterrupt | SystemExit):
                raise
            raise BackendError(
                f"could not start or reach Ray ({address or 'local'}): {exc}"
            ) from exc

    @staticmethod
    def _resolve(ray: Any, address: str) -> str:
        if address != "auto":
            return address
        found = ray._private.services.get_ray_address_from_environment("auto", None)
        if not found or found == "auto":
            raise BackendError("address 'auto': no running Ray cluster found on this machine")
        return str(found)

    def _single_node_mode(self, ray: Any) -> None:
        """Keep Ray on loopback (see the module docstring): the variable for the Ray
        processes started from here, the constant for this already imported Ray."""
        self._set_env(_SINGLE_NODE_ENV, "0")
        constants = ray._private.ray_constants
        previous = constants.ENABLE_RAY_CLUSTER
        constants.ENABLE_RAY_CLUSTER = False

        def undo() -> None:
            constants.ENABLE_RAY_CLUSTER = previous

        self.undo.append(undo)

    def _set_env(self, name: str, value: str | None) -> None:
        """Set ``name`` (None: leave it) until the session ends, then put it back."""
        previous = os.environ.get(name)
        if value is not None:
            os.environ[name] = value

        def undo() -> None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous

        self.undo.append(undo)


_SESSION = _Session()


class RayExecutor:
    """Runs tasks as Ray tasks; see the module docstring for what it sets up.

    ``address``: a running cluster (``"127.0.0.1:6379"``, ``"auto"``), or None to start
    one on 127.0.0.1 for as long as this executor lives. ``num_cpus``: the CPUs of that
    private cluster; with an address, it caps ``max_parallel`` instead.
    """

    kind = "ray"
    in_process = False

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        if num_cpus is not None and num_cpus < 1:
            raise ValidationError(f"ray executor: num_cpus must be >= 1; got {num_cpus}")
        if address is not None and address != "auto":
            _split_address(address)
        self._ray = _import_ray()
        _SESSION.acquire(self._ray, address, num_cpus)
        self._closed = False
        self._lock = threading.Lock()
        self._totals: dict[str, float] = {}
        self._totals_at = 0.0
        try:
            cluster_cpus = int(self._cluster_totals(refresh=True).get("CPU", 1.0))
            self._remote = self._ray.remote(_task_runner())
        except BaseException:
            self.close()
            raise
        if address is not None and num_cpus is not None:
            self.max_parallel = max(1, min(num_cpus, cluster_cpus))
        else:
            self.max_parallel = max(1, cluster_cpus)

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        resources: Resources | None = None,
        name: str = "task",
    ) -> Future[Any]:
        if self._closed:
            raise BackendError("the ray executor is closed")
        wanted = resources or Resources()
        self._check_fits(wanted, name)
        options: dict[str, Any] = {
            "num_cpus": wanted.cpus,
            "num_gpus": wanted.gpus,
            "name": name,
            "max_retries": 0,
        }
        if wanted.memory_mb is not None:
            options["memory"] = wanted.memory_mb * 1024 * 1024
        payload = cloudpickle.dumps((fn, args))
        ref = self._remote.options(**options).remote(payload, list(sys.path))
        return self._as_future(ref, name)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _SESSION.release(self._ray)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _cluster_totals(self, *, refresh: bool) -> dict[str, float]:
        now = time.monotonic()
        if refresh or now - self._totals_at > _TOTALS_MAX_AGE_S:
            self._totals = {k: float(v) for k, v in self._ray.cluster_resources().items()}
            self._totals_at = now
        return self._totals

    def _check_fits(self, wanted: Resources, name: str) -> None:
        asks = {
            "CPU": wanted.cpus,
            "GPU": wanted.gpus,
            "memory": (wanted.memory_mb or 0) * 1024 * 1024,
        }

        def too_big(totals: dict[str, float]) -> list[str]:
            return [key for key, need in asks.items() if need > totals.get(key, 0.0)]

        missing = too_big(self._cluster_totals(refresh=False))
        if missing:  # the cluster may have grown since we last looked
            missing = too_big(self._cluster_totals(refresh=True))
        if not missing:
            return
        totals = self._totals
        parts = []
        for key in missing:
            loopml_name = _RESOURCE_NAMES[key]
            if key == "memory":
                need = str(wanted.memory_mb)
                have = str(int(totals.get(key, 0.0) // (1024 * 1024)))
            else:
                need, have = f"{asks[key]:g}", f"{totals.get(key, 0.0):g}"
            parts.append(f"{loopml_name}={need} but the cluster has {loopml_name}={have}")
        raise ValidationError(
            f"task {name!r} asks for more than the whole Ray cluster has, so it could never "
            f"run: {'; '.join(parts)}"
        )

    def _as_future(self, ref: Any, name: str) -> Future[Any]:
        ray = self._ray
        outer: Future[Any] = Future()

        def settle(inner: Future[Any]) -> None:
            try:
                try:
                    outer.set_result(inner.result())
                except ray.exceptions.RayTaskError as exc:
                    outer.set_exception(_unwrap(exc, name))
                except ray.exceptions.RayError as exc:
                    error = BackendError(f"Ray task {name!r} failed: {exc}")
                    error.__cause__ = exc
                    outer.set_exception(error)
                except BaseException as exc:
                    outer.set_exception(exc)
            except InvalidStateError:  # the caller cancelled it meanwhile
                pass

        def cancel_remote(done: Future[Any]) -> None:
            if done.cancelled():
                # already finished, or Ray is gone: then there is nothing to stop
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

        outer.add_done_callback(cancel_remote)
        ref.future().add_done_callback(settle)
        return outer


def _unwrap(error: Any, name: str) -> BaseException:
    """The exception the task raised, rather than Ray's wrapper around it."""
    cause = getattr(error, "cause", None)
    if not isinstance(cause, BaseException):
        return error  # type: ignore[no-any-return]
    remote = _ANSI_COLOUR.sub("", str(error)).strip()  # Ray's rendering of the remote traceback
    if remote:
        cause.add_note(f"raised in Ray task {name!r}:\n{remote}")
    return cause
