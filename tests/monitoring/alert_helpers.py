"""Helpers for the alert tests: samples as the monitor produces them, a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Sample:
    """A sample as ``MonitorReport.samples()`` gives them (rules read any such object)."""

    name: str
    labels: dict[str, str]
    value: float


def sample(name: str, value: float, **labels: str) -> Sample:
    """A sample of deployment ``churn`` unless ``deployment=`` says otherwise."""
    return Sample(name, {"deployment": "churn", **labels}, value)


def drift(value: float, deployment: str = "churn") -> Sample:
    return sample("loopml_drift_share", value, deployment=deployment)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it.

    ``answers`` are the status codes to give, one per request, then 200 for the rest.
    """

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    requests: int = 0


@contextmanager
def webhook_receiver(answers: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(answers=list(answers or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with lock:
                receiver.requests += 1
                status = receiver.answers.pop(0) if receiver.answers else 200
                if status == 200:
                    receiver.bodies.append(json.loads(raw))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"no")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
