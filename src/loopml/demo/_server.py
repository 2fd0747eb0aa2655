"""A real ``loopml serve`` process for the demo, on a free loopback port.

The replay talks to the same server a user would run, over HTTP, in its own process (so
on two cores it scores while the demo prepares the next batch and runs the monitor).
It is started with this process's settings and stopped, gently then firmly, at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from loopml.core import BackendError, Settings

__all__ = ["LiveServer"]

_START_TIMEOUT_S = 120.0  # imports and model loads on a busy two-core machine
_SEGMENT_INTERVAL_S = 0.2
_STOP_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(
        {
            "LOOPML_HOME": str(settings.home),
            "LOOPML_DB_URL": settings.db_url,
            "LOOPML_ARTIFACTS_URL": str(settings.artifacts_url),
            "LOOPML_AUTH": "1" if settings.auth else "0",
            "LOOPML_SYSTEM_METRICS": "0",
        }
    )
    if settings.token:
        env["LOOPML_TOKEN"] = settings.token
    # A batch of a few hundred records scores faster on one thread than on an OpenMP
    # team that must wake up for it, and the other core stays with the replaying process.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class LiveServer:
    """``loopml serve DEPLOYMENT`` in a subprocess; its output goes to ``log_path``."""

    def __init__(self, settings: Settings, deployment: str, log_path: Path) -> None:
        self.settings = settings
        self.deployment = deployment
        self.log_path = log_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "loopml", "serve", self.deployment]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        # Every tick waits for the server's newest answer to reach a segment: with the
        # default 2 s between seals, that waiting took about 20 s of a 50 s replay.
        command += ["--segment-interval", str(_SEGMENT_INTERVAL_S)]
        self._process = subprocess.Popen(
            command,
            env=_environment(self.settings),
            cwd=self.settings.project_dir or None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a Ctrl-C here is ours to relay
        )
        self.wait_for_revision(None, timeout_s=_START_TIMEOUT_S)

    def _readiness(self, client: httpx.Client) -> dict[str, Any] | None:
        try:
            response = client.get(f"{self.url}/readyz", timeout=5.0)
        except httpx.TransportError:
            return None
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 else None

    def wait_for_revision(self, revision: int | None, *, timeout_s: float = 30.0) -> int:
        """Block until the server is ready (and serves ``revision`` or later); the revision."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client() as client:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    raise BackendError(
                        f"loopml serve {self.deployment} exited with code "
                        f"{self._process.returncode}; its output is in {self.log_path}"
                    )
                state = self._readiness(client)
                if state is not None and (revision is None or int(state["revision"]) >= revision):
                    return int(state["revision"])
                if time.monotonic() > deadline:
                    wanted = "ready" if revision is None else f"serving revision {revision}"
                    raise BackendError(
                        f"loopml serve {self.deployment} was not {wanted} within "
                        f"{timeout_s:.0f} s; its output is in {self.log_path}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (uvicorn drains, the prediction log closes), SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
