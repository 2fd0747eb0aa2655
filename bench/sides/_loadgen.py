"""A small HTTP/1.1 load generator for the serving suite: the same one for every side.

Standard library only (it runs under the project's interpreter and under the peers'). Each
simulated client is one asyncio task on one keep-alive connection, sending a request, reading
the whole response, then sending the next: a closed loop, so concurrency N means at most N
requests in flight. Requests are prepared as bytes beforehand and responses are parsed only
as far as the status line and the body's length, so the generator costs a few tens of
microseconds per request and is not the bottleneck on a 2-core machine.

A run is bounded both in time (``seconds``) and in count (``max_requests``), whichever comes
first.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LoadResult", "Target", "percentile", "post_once", "run_load"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the requests go and what they carry: one JSON body per request, cycled."""

    host: str
    port: int
    path: str
    bodies: Sequence[bytes]

    def requests(self) -> list[bytes]:
        """Each body as a complete HTTP/1.1 POST, ready to write."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        )
        return [
            f"{head}Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body
            for body in self.bodies
        ]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one run measured. Latencies are per request, send to last byte received."""

    concurrency: int
    requests: int
    ok: int
    statuses: dict[str, int]
    seconds: float
    latencies_ms: list[float]
    first_error: str | None

    def figures(self) -> dict[str, Any]:
        """JSON-ready figures: counts, requests/s, and latency percentiles in ms."""
        ordered = sorted(self.latencies_ms)
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.requests - self.ok,
            "statuses": self.statuses,
            "duration_s": round(self.seconds, 3),
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(percentile(ordered, 50), 3),
            "p90_ms": round(percentile(ordered, 90), 3),
            "p99_ms": round(percentile(ordered, 99), 3),
            "max_ms": round(ordered[-1], 3) if ordered else math.nan,
            "first_error": self.first_error,
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of already sorted values (nan when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class _Shared:
    """Counters every client task updates (one event loop thread: no locks needed)."""

    def __init__(self, max_requests: int, deadline: float) -> None:
        self.left = max_requests
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.first_error: str | None = None

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.left -= 1
        return True


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if not chunked:
        return status, await reader.readexactly(length), not close
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        parts.append(await reader.readexactly(size + 2))
        if size == 0:
            return status, b"".join(parts), not close


async def _client(target: Target, requests: list[bytes], offset: int, shared: _Shared) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    index = offset
    try:
        while shared.take():
            if writer is None:
                reader, writer = await asyncio.open_connection(target.host, target.port)
            assert reader is not None
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status, body, keep = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                shared.statuses["error"] = shared.statuses.get("error", 0) + 1
                shared.first_error = shared.first_error or f"{type(exc).__name__}: {exc}"
                writer.close()
                reader = writer = None
                continue
            shared.latencies.append((time.perf_counter() - started) * 1000)
            key = str(status)
            shared.statuses[key] = shared.statuses.get(key, 0) + 1
            if status != 200 and shared.first_error is None:
                shared.first_error = f"HTTP {status}: {body[:300].decode(errors='replace')}"
            if not keep:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def _run(target: Target, concurrency: int, seconds: float, max_requests: int) -> LoadResult:
    requests = target.requests()
    started = time.perf_counter()
    shared = _Shared(max_requests, started + seconds)
    step = max(1, len(requests) // concurrency)
    await asyncio.gather(*(_client(target, requests, i * step, shared) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = sum(shared.statuses.values())
    return LoadResult(
        concurrency=concurrency,
        requests=done,
        ok=shared.statuses.get("200", 0),
        statuses=dict(sorted(shared.statuses.items())),
        seconds=elapsed,
        latencies_ms=shared.latencies,
        first_error=shared.first_error,
    )


def run_load(target: Target, *, concurrency: int, seconds: float, max_requests: int) -> LoadResult:
    """``concurrency`` closed-loop clients for ``seconds`` or ``max_requests`` in all."""
    if concurrency < 1 or seconds <= 0 or max_requests < 1:
        raise ValueError(
            f"concurrency and max_requests must be >= 1 and seconds > 0; "
            f"got {concurrency}, {max_requests}, {seconds}"
        )
    return asyncio.run(_run(target, concurrency, seconds, max_requests))


def post_once(target: Target, body: bytes, timeout_s: float = 5.0) -> tuple[int, Any]:
    """One request on a fresh connection (blocking): its status and JSON body (or text).

    Raises:
        OSError: the connection failed (refused while the server starts, say) or timed out.
    """
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout_s)
    try:
        connection.request(
            "POST", target.path, body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        raw = response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"no complete answer: {type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")
