"""The REST app that serves one deployment (see docs/serving.md, "The app")."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from loopml.core import PermissionDeniedError, Settings, ValidationError, now_ms
from loopml.serving._deployments import Deployments
from loopml.serving._lane import LanedFastAPI, error_body
from loopml.serving._predlog import SEGMENT_INTERVAL_S, PredictionLog
from loopml.serving._predlog_record import PredictionRecord, new_prediction_id
from loopml.serving._routing import route
from loopml.serving._runtime import LoadedModel, ServingState, load_state, validate_records

__all__ = ["create_app"]

log = logging.getLogger("loopml.serving")
POLL_S = 0.5


class Metrics:
    """The app's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loopml_requests", "Predict requests", ["deployment", "status"], registry=r
        )
        self.latency = Histogram(
            "loopml_request_latency_seconds", "Predict latency", ["deployment"], registry=r
        )
        by_version = ["deployment", "model_version"]
        self.predictions = Counter("loopml_predictions", "Predictions", by_version, registry=r)
        self.fallbacks = Counter("loopml_fallbacks", "Fallback answers", by_version, registry=r)
        self.errors = Counter("loopml_errors", "Model failures", by_version, registry=r)


class Runtime:
    """The current :class:`ServingState` (one reference, replaced whole) and its upkeep."""

    def __init__(self, settings: Settings, name: str, *, freeze_gc: bool = False) -> None:
        self.settings = settings
        self.name = name
        self.freeze_gc = freeze_gc
        self.state: ServingState | None = None
        self.error: str | None = None
        self.rng = random.Random()
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="loopml-model")

    async def keep_current(self) -> None:
        """Load the deployment, then poll its revision; load a new one before switching."""
        with Deployments(self.settings) as deployments:
            while True:
                try:
                    await self._refresh(deployments)
                    self.error = None
                except Exception as exc:  # keep serving what is loaded; retry next poll
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning("deployment %s: %s", self.name, self.error)
                await asyncio.sleep(POLL_S)

    async def _refresh(self, deployments: Deployments) -> None:
        """Load the deployment's current revision when it is not the one served (a method
        of its own so that nothing holds the replaced state while the poll sleeps)."""
        loop = asyncio.get_running_loop()
        current = self.state
        if current is not None:  # a poll: the revision only, a few columns less
            revision = await loop.run_in_executor(None, deployments.revision, self.name)
            if revision == current.revision:
                return
        found = await loop.run_in_executor(None, deployments.get, self.name)
        state = await loop.run_in_executor(None, load_state, self.settings, found, current)
        if current is None and self.freeze_gc:
            # What the process holds once its first versions are loaded (modules, the app,
            # the libraries loading imported) lives as long as it does. Frozen, it is out
            # of the collector's full collections, which then scan only what came after:
            # tens of milliseconds less each. A version is freed by reference counting when
            # replaced (it holds no reference cycle; see _runtime._weak_predict).
            gc.collect()
            gc.freeze()
        self.state = state  # the switch: one reference assignment
        log.info("serving %s revision %d", self.name, state.revision)

    async def call(
        self, model: LoadedModel, rows: list[dict[str, Any]], timeout_ms: int
    ) -> list[dict[str, Any]]:
        if model.scores_inline(len(rows)):
            return model.predict(rows)  # a fraction of a millisecond (measured at load)
        # micro-batched with concurrent requests for the same version (see _batching)
        work = model.batcher.submit(rows, self.executor, timeout_ms / 2000)
        return await asyncio.wait_for(work, timeout_ms / 1000)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"


async def _score(
    rt: Runtime, metrics: Metrics, state: ServingState, ref: str, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], float]:
    """``ref``'s answers for ``rows``, or the fallback's (marked) when it fails or is slow."""
    spec, name = state.deployment.spec, state.deployment.name
    start = time.perf_counter()
    try:
        out = await rt.call(state.models[ref], rows, spec.timeout_ms)
        for item in out:
            item["fallback"] = False
        return out, (time.perf_counter() - start) * 1000
    except Exception as exc:
        reason = _failure(exc)
    metrics.errors.labels(name, ref).inc()
    fallback = spec.fallback
    if fallback is None:
        log.warning("%s: %s failed (%s), no fallback", name, ref, reason)
        raise HTTPException(
            503, f"model {ref} failed ({reason}) and deployment {name!r} has no fallback"
        )
    if fallback.kind == "constant":
        out = [{"prediction": fallback.value} for _ in rows]
    else:
        try:
            out = await rt.call(state.models[str(fallback.model)], rows, spec.timeout_ms)
        except Exception as exc:
            metrics.errors.labels(name, str(fallback.model)).inc()
            raise HTTPException(
                503,
                f"model {ref} failed ({reason}) and its fallback {fallback.model} failed too "
                f"({_failure(exc)})",
            ) from None
    metrics.fallbacks.labels(name, ref).inc(len(rows))
    log.warning("%s: %s failed (%s); fallback %s answered", name, ref, reason, fallback.kind)
    answered_by = fallback.model if fallback.kind == "version" else "constant"
    for item in out:
        item.update(fallback=True, fallback_reason=reason, answered_by=answered_by)
    return out, (time.perf_counter() - start) * 1000


async def _shadow(
    rt: Runtime, metrics: Metrics, state: ServingState, ref: str, rows: list[dict[str, Any]]
) -> list[PredictionRecord]:
    start = time.perf_counter()
    try:
        out = await rt.call(state.models[ref], rows, state.deployment.spec.timeout_ms)
    except Exception as exc:
        metrics.errors.labels(state.deployment.name, ref).inc()
        log.warning("%s: shadow %s failed (%s)", state.deployment.name, ref, _failure(exc))
        return []
    ms = (time.perf_counter() - start) * 1000
    metrics.predictions.labels(state.deployment.name, ref).inc(len(rows))
    return [
        PredictionRecord(
            new_prediction_id(), now_ms(), state.deployment.name, ref, row, item, ms, shadow=True
        )
        for row, item in zip(rows, out, strict=True)
    ]


# What the log keeps of an answer: the fallback flag has a column of its own; a fallback's
# reason and who answered instead go with the output.
_LOGGED_OUTPUT = ("prediction", "probabilities", "fallback_reason", "answered_by")


async def predict(
    rt: Runtime, metrics: Metrics, plog: PredictionLog, state: ServingState, body: Any
) -> dict[str, Any]:
    records, errors = validate_records(state, body)
    if errors:
        raise RequestValidationError(errors)
    spec, name = state.deployment.spec, state.deployment.name
    decisions = []
    for row in records:
        key = row.get(spec.sticky_key) if spec.sticky_key else None
        decisions.append(route(spec, None if key is None else str(key), rt.rng))
    groups: dict[str, list[int]] = {}
    shadows: dict[str, list[int]] = {}
    for i, decision in enumerate(decisions):
        groups.setdefault(decision.primary, []).append(i)
        for ref in decision.shadows:
            shadows.setdefault(ref, []).append(i)
    refs = list(groups)
    jobs = [_score(rt, metrics, state, ref, [records[i] for i in groups[ref]]) for ref in refs]
    shadow_jobs = [
        _shadow(rt, metrics, state, ref, [records[i] for i in idx]) for ref, idx in shadows.items()
    ]
    results: list[Any]
    if len(jobs) == 1 and not shadow_jobs:  # the usual request: no task, no gather
        results = [await jobs[0]]
    else:
        results = await asyncio.gather(*jobs, *shadow_jobs, return_exceptions=True)
    for result in results[: len(jobs)]:
        if isinstance(result, BaseException):
            raise result
    answers: list[dict[str, Any]] = [{} for _ in records]
    logged: list[PredictionRecord] = []
    for ref, result in zip(refs, results[: len(jobs)], strict=True):
        out, ms = result
        for i, item in zip(groups[ref], out, strict=True):
            pid = new_prediction_id()
            answers[i] = {"prediction_id": pid, "model_version": ref, **item}
            output = {k: v for k, v in item.items() if k in _LOGGED_OUTPUT}
            logged.append(
                PredictionRecord(pid, now_ms(), name, ref, records[i], output, ms, item["fallback"])
            )
            if not item["fallback"]:
                metrics.predictions.labels(name, ref).inc()
    for extra in results[len(jobs) :]:
        if isinstance(extra, list):
            logged.extend(extra)
    await asyncio.wrap_future(plog.append_group(logged))
    return {"predictions": answers}


def create_app(
    settings: Settings,
    deployment_name: str,
    *,
    durable_log: bool = True,
    collectors: Iterable[Any] = (),
    freeze_gc: bool = False,
    segment_interval_s: float = SEGMENT_INTERVAL_S,
) -> FastAPI:
    """A FastAPI app serving ``deployment_name``; ready once its versions are loaded.

    ``collectors`` are extra prometheus-client collectors for ``/metrics`` (the CLI
    passes monitoring's; serving itself knows nothing of monitoring). ``freeze_gc``
    (``loopml serve`` sets it: the process is the server's alone) freezes what the
    process holds once the first versions are loaded (``gc.freeze``), so full collections
    skip it. ``segment_interval_s`` is how often the prediction log turns its journal into
    a segment that other processes (monitoring, ``predictions tail``) read.
    """
    rt = Runtime(settings, deployment_name, freeze_gc=freeze_gc)
    metrics = Metrics()
    for collector in collectors:
        metrics.registry.register(collector)
    holder: dict[str, PredictionLog] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["log"] = app.state.prediction_log = PredictionLog(
            settings, durable=durable_log, segment_interval_s=segment_interval_s
        )
        task = asyncio.create_task(rt.keep_current())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            rt.executor.shutdown(wait=False, cancel_futures=True)
            holder.pop("log").close()

    app = LanedFastAPI(title=f"loopml: {deployment_name}", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        state = rt.state
        if state is None:
            response.status_code = 503
            return {"ready": False, "deployment": deployment_name, "error": rt.error}
        return {"ready": True, "deployment": deployment_name, "revision": state.revision}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def handle_predict(name: str, raw: bytes) -> tuple[int, bytes]:
        """The predict endpoint as (status, JSON body), for the lane and the route alike."""
        start, status = time.perf_counter(), 500
        try:
            if name != deployment_name:
                status = 404
                detail = f"no deployment {name!r} here; this server serves {deployment_name!r}"
                return status, error_body(detail)
            state = rt.state
            if state is None:
                status = 503
                return status, error_body(f"deployment {name!r} is not loaded yet")
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                status = 422
                invalid = {"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}
                return status, error_body([invalid])
            try:
                answer = await predict(rt, metrics, holder["log"], state, body)
            except RequestValidationError as exc:
                status = 422
                return status, error_body(exc.errors())
            except HTTPException as exc:
                status = exc.status_code
                return status, error_body(exc.detail)
            status = 200
            return status, orjson.dumps(answer)
        finally:
            metrics.requests.labels(deployment_name, str(status)).inc()
            metrics.latency.labels(deployment_name).observe(time.perf_counter() - start)

    @app.post("/v1/deployments/{name}/predict", response_model=None)
    async def predict_endpoint(name: str, request: Request) -> Response:
        """One record (an object) or many (a list); fields as the model's signature."""
        # PredictLane answers these before FastAPI routes them; this route documents the
        # endpoint in OpenAPI and serves it should a request reach FastAPI anyway.
        status, content = await handle_predict(name, await request.body())
        return Response(content, status_code=status, media_type="application/json")

    app.set_lane(handle_predict)

    @app.post("/v1/deployments/{name}/feedback")
    async def feedback_endpoint(name: str, request: Request) -> dict[str, Any]:
        """True labels: ``{"prediction_id", "label"}`` or a list; unknown ids come back."""
        from loopml.serving._feedback import Feedback

        if name != deployment_name:
            raise HTTPException(404, f"no deployment {name!r} here")
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, "body is not valid JSON") from None
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(i, dict) and {"prediction_id", "label"} <= set(i) for i in items):
            raise HTTPException(422, "each item needs prediction_id and label")

        def record() -> Any:
            with Feedback(settings) as feedback:
                return feedback.record(items, source="api", log=holder["log"])

        try:
            result = await asyncio.get_running_loop().run_in_executor(None, record)
        except ValidationError as exc:
            raise HTTPException(422, str(exc)) from None
        except PermissionDeniedError as exc:
            raise HTTPException(403, str(exc)) from None
        return {"accepted": result.accepted, "unknown": result.unknown}

    def openapi() -> dict[str, Any]:
        schema = get_openapi(title=app.title, version="1", routes=app.routes)
        state = rt.state
        if state is not None:
            record = state.request_model.model_json_schema()
            body = {"anyOf": [record, {"type": "array", "items": record}]}
            post = schema["paths"]["/v1/deployments/{name}/predict"]["post"]
            post["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
