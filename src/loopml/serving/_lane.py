"""The predict endpoint's short way through the app: plain ASGI, orjson, no framework.

FastAPI's routing, dependency solving and response encoding cost more per request than
scoring one record, and so do its middleware layers (FastAPI 0.165 asks its telemetry
whether it is enabled on every request). :class:`PredictLane` answers
``POST /v1/deployments/{name}/predict`` itself, with the very handler the FastAPI route
uses (so both give the same answers, and the route still documents the endpoint in
OpenAPI); every other request goes on to FastAPI. :class:`LanedFastAPI` puts the lane
in front of all of FastAPI, middleware included.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI

__all__ = ["LanedFastAPI", "PredictHandler", "PredictLane", "error_body", "predict_path"]

# (deployment name in the path, raw body) -> (HTTP status, JSON body)
PredictHandler = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_PREFIX = "/v1/deployments/"
_SUFFIX = "/predict"
_HEADERS = [(b"content-type", b"application/json")]
MAX_BODY_BYTES = 64 * 1024 * 1024  # a predict body larger than this gets a 413


def predict_path(path: str) -> str | None:
    """The deployment name in ``/v1/deployments/{name}/predict``, or None."""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX) : -len(_SUFFIX)]
    return name if name and "/" not in name else None


def error_body(detail: Any) -> bytes:
    """FastAPI's error shape, ``{"detail": ...}``."""
    return orjson.dumps({"detail": detail})


class PredictLane:
    """ASGI middleware answering predict requests with ``handler``; the rest go to ``app``."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        handler: PredictHandler,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self._handler = handler
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = None
        if scope["type"] == "http" and scope["method"] == "POST":
            name = predict_path(scope["path"])
        if name is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_body:
                detail = f"request body is larger than {self._max_body} bytes"
                await self._respond(send, 413, error_body(detail))
                return
            if not message.get("more_body", False):
                break
        status, body = await self._handler(name, b"".join(chunks))
        await self._respond(send, status, body)

    @staticmethod
    async def _respond(send: Send, status: int, body: bytes) -> None:
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class LanedFastAPI(FastAPI):
    """A FastAPI app whose predict requests take a :class:`PredictLane` ahead of every
    FastAPI layer; without a lane (:meth:`set_lane` not called) it is plain FastAPI."""

    _lane: PredictLane | None = None

    def set_lane(self, handler: PredictHandler, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        """Answer predict requests with ``handler`` from now on."""
        self._lane = PredictLane(functools.partial(FastAPI.__call__, self), handler, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._lane is None:
            await super().__call__(scope, receive, send)
        else:
            await self._lane(scope, receive, send)
