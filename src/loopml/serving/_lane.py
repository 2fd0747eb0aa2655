"""The predict endpoint's short way through the app: plain ASGI, orjson, no framework.

FastAPI's routing, dependency solving and response encoding cost more per request than
scoring one record. :class:`PredictLane` sits in the app's middleware stack and answers
``POST /v1/deployments/{name}/predict`` itself, with the very handler the FastAPI route
uses (so both give the same answers, and the route still documents the endpoint in
OpenAPI); every other request goes on to FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["PredictHandler", "PredictLane", "error_body", "predict_path"]

# (deployment name in the path, raw body) -> (HTTP status, JSON body)
PredictHandler = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_PREFIX = "/v1/deployments/"
_SUFFIX = "/predict"
_HEADERS = [(b"content-type", b"application/json")]


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

    def __init__(self, app: Callable[..., Awaitable[None]], handler: PredictHandler) -> None:
        self.app = app
        self._handler = handler

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        name = None
        if scope["type"] == "http" and scope["method"] == "POST":
            name = predict_path(scope["path"])
        if name is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        status, body = await self._handler(name, b"".join(chunks))
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
