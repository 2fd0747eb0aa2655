"""The predict lane in front of FastAPI: predict requests go to the handler, everything else
to FastAPI, and a body over the limit is a 413 that never reaches the handler."""

from __future__ import annotations

import asyncio

import httpx

from loopml.serving._lane import LanedFastAPI, predict_path


def _app(calls: list[tuple[str, bytes]], max_body_bytes: int = 1024) -> LanedFastAPI:
    app = LanedFastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def handler(name: str, raw: bytes) -> tuple[int, bytes]:
        calls.append((name, raw))
        return 200, b'{"predictions": []}'

    app.set_lane(handler, max_body_bytes=max_body_bytes)
    return app


def _post(app: LanedFastAPI, path: str, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lane") as client:
            return await client.post(path, content=body)

    return asyncio.run(go())


def test_predict_requests_take_the_lane_and_the_rest_reach_fastapi() -> None:
    calls: list[tuple[str, bytes]] = []
    app = _app(calls)
    answer = _post(app, "/v1/deployments/churn/predict", b'{"a": 1}')
    assert answer.status_code == 200 and answer.json() == {"predictions": []}
    assert answer.headers["content-type"] == "application/json"
    assert calls == [("churn", b'{"a": 1}')]

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lane") as client:
            return await client.get("/healthz")

    assert asyncio.run(get()).json() == {"status": "ok"}
    assert _post(app, "/v1/deployments/a/b/predict", b"{}").status_code == 404  # not a name
    assert len(calls) == 1


def test_a_body_over_the_limit_is_a_413_naming_the_limit() -> None:
    calls: list[tuple[str, bytes]] = []
    answer = _post(_app(calls, max_body_bytes=100), "/v1/deployments/churn/predict", b"x" * 101)
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body is larger than 100 bytes"}
    assert calls == []
    ok = _post(_app(calls, max_body_bytes=100), "/v1/deployments/churn/predict", b"x" * 100)
    assert ok.status_code == 200 and len(calls) == 1


def test_predict_path() -> None:
    assert predict_path("/v1/deployments/churn-api/predict") == "churn-api"
    assert predict_path("/v1/deployments//predict") is None
    assert predict_path("/v1/deployments/churn/feedback") is None
