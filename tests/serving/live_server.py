"""Helpers for the end-to-end serving tests: a real ``loopml serve`` process on a free
loopback port, the ``loopml`` command line as a subprocess, and a bounded load of
concurrent clients that records every request it made."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from loopml.core import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0  # imports and model loads on a busy 2-core machine


def settings_for(home: Path) -> Settings:
    """The settings a ``loopml --home HOME`` process resolves (SQLite in the home)."""
    return load_settings(project_dir=home.parent, environ={}, home=home, system_metrics=False)


def fit_two_runs(settings: Settings) -> list[str]:
    """Two tracked runs, each logging a logistic regression on features ``a`` and ``b``
    (the second heavily regularized, so the two disagree on some rows): their run ids."""
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return [
        fit(estimator, frame, target="label", settings=settings, cv=0).run_id
        for estimator in (LogisticRegression(), LogisticRegression(C=0.001))
    ]


def register_two_versions(settings: Settings, name: str = "churn") -> None:
    """``name@1`` and ``name@2``, from :func:`fit_two_runs`."""
    from loopml.registry import ModelRegistry

    with ModelRegistry(settings) as registry:
        for run_id in fit_two_runs(settings):
            registry.register(name, run_id=run_id)


def _environment() -> dict[str, str]:
    """This environment without LOOPML_* settings (the tests pass --home), and with
    the repository importable (``tests.*`` and ``src``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    return env


def loopml(home: Path, *args: str, timeout: float = 120) -> str:
    """Run ``loopml --home HOME ARGS`` as a user would; its output, or a failed assert."""
    done = subprocess.run(
        [sys.executable, "-m", "loopml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        cwd=home.parent,
        env=_environment(),
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"loopml {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


class LiveServer:
    """``loopml --home HOME serve DEPLOYMENT`` in a process group of its own."""

    def __init__(
        self, home: Path, deployment: str, *, workers: int = 1, durable: bool = True
    ) -> None:
        self.home = home
        self.deployment = deployment
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.predict_url = f"{self.base_url}/v1/deployments/{deployment}/predict"
        self.output = home.parent / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "loopml", "--home", str(home), "serve", deployment]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        command += [] if durable else ["--no-durable-log"]
        with open(self.output, "wb") as sink:
            self.process = subprocess.Popen(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=home.parent,
                env=_environment(),
                start_new_session=True,  # its own process group: workers die with it
            )

    def log_tail(self, chars: int = 3000) -> str:
        return self.output.read_text(errors="replace")[-chars:]

    def readyz(self) -> dict[str, Any] | None:
        """One ``/readyz`` on a fresh connection (so it may reach any worker)."""
        try:
            answer = httpx.get(f"{self.base_url}/readyz", timeout=5)
        except httpx.TransportError:
            return None
        body: dict[str, Any] = answer.json()
        return body if answer.status_code == 200 else None

    def _probe_all(self, probes: int) -> list[dict[str, Any] | None]:
        """``probes`` concurrent ``/readyz`` requests, each on a connection of its own."""
        answers: list[dict[str, Any] | None] = [None] * probes

        def probe(i: int) -> None:
            answers[i] = self.readyz()

        threads = [threading.Thread(target=probe, args=(i,)) for i in range(probes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def wait_ready(self, revision: int | None = None) -> None:
        """Until every worker serves (``revision``, when given): rounds of concurrent
        probes on fresh connections, so that each worker is asked."""

        def every_worker_ready() -> bool:
            assert self.process.poll() is None, f"server exited:\n{self.log_tail()}"
            for _ in range(3):
                answers = self._probe_all(4 * self.workers)
                if any(
                    a is None or (revision is not None and a["revision"] != revision)
                    for a in answers
                ):
                    return False
            return True

        wait_until(every_worker_ready, START_TIMEOUT_S, f"{self.deployment} ready")

    def stop(self) -> int:
        """SIGTERM to the group (uvicorn drains and the log closes), SIGKILL if stuck."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL to the whole group: the server and every worker, at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(home: Path, deployment: str, **options: Any) -> Iterator[LiveServer]:
    """A ready :class:`LiveServer`, stopped (or killed) on the way out."""
    server = LiveServer(home, deployment, **options)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass
class Exchange:
    """One request of the load and what came back (``status`` 0: no answer)."""

    client: int
    seq: int
    body: dict[str, Any]
    started: float
    finished: float = 0.0
    status: int = 0
    answer: Any = None
    error: str = ""


@dataclass
class Load:
    """``clients`` threads, each with one keep-alive connection, sending one record per
    request until stopped or ``max_requests`` are sent in all."""

    url: str
    body: Callable[[int, int], dict[str, Any]]
    clients: int = 8
    max_requests: int = 40_000
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._drive, args=(c,), name=f"load-{c}", daemon=True)
            for c in range(self.clients)
        ]

    def _drive(self, client: int) -> None:
        # A connection idle for 2 s is not reused: uvicorn closes idle ones after 5 s, and a
        # request sent on one as it closes fails on the client side, switch or no switch.
        limits = httpx.Limits(keepalive_expiry=2.0)
        with httpx.Client(timeout=30, limits=limits) as http:
            seq = 0
            while not self._stop.is_set():
                with self._lock:
                    if len(self.exchanges) >= self.max_requests:
                        return
                    exchange = Exchange(client, seq, self.body(client, seq), time.monotonic())
                    self.exchanges.append(exchange)
                try:
                    response = http.post(self.url, json=exchange.body)
                    exchange.status = response.status_code
                    exchange.answer = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    exchange.error = f"{type(exc).__name__}: {exc}"
                exchange.finished = time.monotonic()
                seq += 1

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def done(self) -> list[Exchange]:
        """The requests that were answered or failed (not the ones still in flight)."""
        with self._lock:
            return [e for e in self.exchanges if e.finished]

    def count_since(self, since: float) -> int:
        return sum(1 for e in self.done() if e.started >= since)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def failures(exchanges: list[Exchange], versions: set[str]) -> list[str]:
    """Each exchange that is not a 200 with one well-formed prediction of ``versions``."""
    bad: list[str] = []
    answered = {(e.client, e.seq): e.finished for e in exchanges}
    for e in exchanges:
        problem = _malformed(e, versions)
        if problem:
            idle = e.started - answered.get((e.client, e.seq - 1), e.started)
            took = e.finished - e.started
            bad.append(
                f"client {e.client} #{e.seq} (sent {idle:.3f} s after its previous answer, "
                f"failed {took:.3f} s later): {problem}"
            )
    return bad


def _malformed(e: Exchange, versions: set[str]) -> str:
    if e.status != 200:
        return e.error or f"HTTP {e.status}: {e.answer}"
    try:
        [answer] = e.answer["predictions"]
        pid = answer["prediction_id"]
        ok = (
            len(pid) == 32
            and int(pid, 16) >= 0
            and answer["model_version"] in versions
            and answer["prediction"] in (0, 1)
            and set(answer["probabilities"]) == {"0", "1"}
            and answer["fallback"] is False
        )
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed answer {e.answer!r} ({exc})"
    return "" if ok else f"unexpected answer {answer!r}"


def version_of(e: Exchange) -> str:
    return str(e.answer["predictions"][0]["model_version"])


def prediction_id_of(e: Exchange) -> str:
    return str(e.answer["predictions"][0]["prediction_id"])
