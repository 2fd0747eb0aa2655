"""The serving workloads, measured the same way for every side.

Each side script wraps its library in a :class:`ServingSide` (train, register, deploy, and
the command a user runs to serve); :func:`measure` launches that command, times the cold
start, drives the load with :mod:`bench.sides._loadgen` and stops the server. Standard
library only, apart from the data helpers it is handed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.sides._loadgen import Target, post_once, run_load

__all__ = ["ServerSpec", "ServingSide", "free_port", "measure", "serve_figures"]

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server the way a user would, and where it answers.

    ``{port}`` in ``command`` is replaced by a free port at each launch.
    """

    label: str
    command: list[str]
    path: str
    env: Mapping[str, str] = field(default_factory=dict)


class ServingSide(Protocol):
    """One serving library: its model made ready to serve, and its request format."""

    package: str
    version: str

    def prepare(self, kind: str) -> ServerSpec:
        """Train ``kind`` (seeded), register/log it the library's way; not timed."""

    def body(self, row: Mapping[str, float]) -> bytes:
        """The JSON body of a single-record request for ``row``."""

    def labels(self, answer: Any) -> list[Any]:
        """The predicted labels in a 200 answer's JSON."""

    def expected(self, kind: str, rows: Sequence[Mapping[str, float]]) -> list[Any]:
        """What the trained model itself predicts for ``rows``, in-process."""


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class _Server:
    """A launched server process (in a session of its own, so its children stop with it)."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.port = free_port()
        self._log = log_path.open("ab")
        command = [part.replace("{port}", str(self.port)) for part in spec.command]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )

    def tail(self, lines: int = 8) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip()
        return " | ".join(text.splitlines()[-lines:])

    def wait_first_200(self, target: Target, body: bytes, timeout_s: float) -> float:
        """Seconds from launch to the first 200 answer to ``body``.

        Raises:
            RuntimeError: the process exited, or no 200 came within ``timeout_s``.
        """
        deadline = self.started + timeout_s
        last = "no answer yet"
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.label}: server exited with status {self.process.returncode} "
                    f"before answering: {self.tail()}"
                )
            try:
                status, answer = post_once(target, body, timeout_s=10.0)
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.005)
                continue
            if status == 200:
                return time.perf_counter() - self.started
            last = f"HTTP {status}: {str(answer)[:200]}"
            time.sleep(0.005)
        raise RuntimeError(f"{self.spec.label}: no 200 within {timeout_s:.0f} s ({last})")

    def stop(self) -> None:
        """SIGTERM to the server's process group; SIGKILL if it lingers past 20 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def _serving(spec: ServerSpec, workdir: Path) -> Iterator[_Server]:
    server = _Server(spec, workdir / f"server-{spec.label}.log")
    try:
        yield server
    finally:
        server.stop()


def _probe(
    side: ServingSide, kind: str, target: Target, rows: Sequence[Mapping[str, float]]
) -> dict[str, Any]:
    """Ask the server for ``rows`` one at a time; compare with the model's own answers."""
    expected = side.expected(kind, rows)
    served: list[Any] = []
    for row in rows:
        status, answer = post_once(target, side.body(row))
        served.extend(side.labels(answer) if status == 200 else [f"HTTP {status}"])
    matching = sum(1 for got, want in zip(served, expected, strict=True) if got == want)
    return {"rows": len(rows), "matching": matching, "ok": matching == len(rows)}


def serve_figures(
    side: ServingSide,
    spec: ServerSpec,
    kind: str,
    rows: Sequence[Mapping[str, float]],
    workdir: Path,
    *,
    cold_starts: int,
    warmup_s: float,
    latency_s: float,
    throughput_s: float,
    max_requests: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Launch ``spec`` ``cold_starts`` times (timing each to its first 200); on the last
    server, warm up, then measure concurrency 1 and concurrency 8."""
    bodies = [side.body(row) for row in rows]
    cold: list[float] = []
    for attempt in range(cold_starts):
        with _serving(spec, workdir) as server:
            target = Target(HOST, server.port, spec.path, bodies)
            cold.append(server.wait_first_200(target, bodies[0], timeout_s))
            if attempt < cold_starts - 1:
                continue
            run_load(target, concurrency=8, seconds=warmup_s, max_requests=max_requests)
            c1 = run_load(target, concurrency=1, seconds=latency_s, max_requests=max_requests)
            c8 = run_load(target, concurrency=8, seconds=throughput_s, max_requests=max_requests)
            probe = _probe(side, kind, target, rows[:50])
    one, eight = c1.figures(), c8.figures()
    return {
        "cold_start": {
            "seconds": round(statistics.median(cold), 4),
            "all_seconds": [round(s, 4) for s in cold],
        },
        # The ratio is MLflow's p99 / loopml's: "seconds" holds the p99 latency.
        "p99_c1": {"seconds": one["p99_ms"] / 1000, **one},
        # Throughput as seconds per request, so peer / loopml is loopml's requests/s over
        # the peer's, like every other ratio.
        "throughput_c8": {"seconds": 1 / max(eight["requests_per_s"], 1e-9), **eight},
        "probe": probe,
    }


def measure(side: ServingSide, config: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """Every serving figure of one side (see bench/README.md, "The serving suite")."""
    from bench.sides._serving_data import dataset, request_rows

    frame = dataset(config["rows"], config["features"], config["seed"])
    rows = request_rows(frame, config["request_rows"])
    timing = {
        "warmup_s": config["warmup_seconds"],
        "max_requests": config["max_requests"],
        "timeout_s": config["start_timeout_seconds"],
    }
    figures: dict[str, Any] = {
        "package": side.package,
        "version": side.version,
        "python": platform.python_version(),
        "model": "GradientBoostingClassifier",
    }
    spec = side.prepare("gbc")
    figures.update(
        serve_figures(
            side,
            spec,
            "gbc",
            rows,
            workdir,
            cold_starts=config["cold_starts"],
            latency_s=config["latency_seconds"],
            throughput_s=config["throughput_seconds"],
            **timing,
        )
    )
    return figures
