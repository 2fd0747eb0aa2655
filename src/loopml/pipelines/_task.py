"""The worker side of a step: load inputs, call the function, store outputs.

``execute_step`` is what every executor runs, in this process, a pool worker or a
Ray worker. It needs only the settings (store URLs) and the task; it never touches
the pipeline's records, which the driver alone writes.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from loopml.artifacts import ArtifactStore
from loopml.compute import StepTimeoutError, call_with_timeout
from loopml.core import Settings, ValidationError, now_ms
from loopml.pipelines._step import Step
from loopml.pipelines._values import ValueRef, dump_value, load_value, type_name

__all__ = ["InputSpec", "StepContext", "StepResult", "StepTask", "current_step", "execute_step"]

_CONTEXT: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "loopml_step_context", default=None
)
_MAX_LOG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class InputSpec:
    """One argument: a value at hand, a stored value, or a dataset version to load."""

    value: Any = None
    ref: ValueRef | None = None
    dataset: str | None = None  # "name@version"
    has_value: bool = False


@dataclass
class StepTask:
    step: Step
    node: str
    inputs: dict[str, InputSpec]
    settings: Settings
    pipeline: str
    pipeline_run_id: str
    step_run_id: str
    tracking_run_id: str | None
    keep_values: bool  # in-process: hand the Python objects back as well


@dataclass
class StepResult:
    ok: bool
    attempts: int
    start_ms: int
    end_ms: int
    outputs: dict[str, ValueRef] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    logs: str = ""
    error: str | None = None
    traceback: str | None = None
    tracking_run_id: str | None = None


@dataclass
class StepContext:
    """What a running step can know about itself: ``loopml.pipelines.current_step()``."""

    name: str
    pipeline: str
    pipeline_run_id: str
    step_run_id: str
    attempt: int
    settings: Settings
    _parent_run: str | None = None
    tracking_run_id: str | None = None
    _client: Any = None

    def start_run(self, name: str | None = None, **kwargs: Any) -> Any:
        """A tracking run nested under the pipeline run's, recorded with this step."""
        from loopml.tracking import Client

        if self._client is None:
            self._client = Client(self.settings)
        run = self._client.start_run(
            experiment=self.pipeline,
            name=name or f"{self.pipeline}.{self.name}",
            parent=self._parent_run,
            **kwargs,
        )
        run.set_tags({"loopml.pipeline.run_id": self.pipeline_run_id, "loopml.step": self.name})
        self.tracking_run_id = run.id
        return run


def current_step() -> StepContext:
    """The step running in this thread; a ValidationError outside of a step."""
    context = _CONTEXT.get()
    if context is None:
        raise ValidationError("current_step() is only available while a pipeline step runs")
    return context


class _Tee(io.TextIOBase):
    """Writes to the real stream and keeps a copy, so logs show live and are stored."""

    def __init__(self, stream: TextIO, copy: io.StringIO) -> None:
        self._stream, self._copy = stream, copy

    def write(self, text: str) -> int:
        if self._copy.tell() < _MAX_LOG_BYTES:
            self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


@contextmanager
def _captured() -> Iterator[io.StringIO]:
    copy = io.StringIO()
    handler = logging.StreamHandler(copy)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)  # the docs promise INFO lines; WARNING is the default
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, copy), _Tee(err, copy)
    try:
        yield copy
    finally:
        sys.stdout, sys.stderr = out, err
        root.removeHandler(handler)
        root.setLevel(level)


def _load_inputs(task: StepTask, store: ArtifactStore | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for arg, spec in task.inputs.items():
        if spec.has_value:
            values[arg] = spec.value
        elif spec.dataset is not None:
            from loopml.data import DataCatalog

            with DataCatalog(task.settings, create_store=False) as catalog:
                values[arg] = catalog.load(spec.dataset)
        elif spec.ref is not None and store is not None:
            values[arg] = load_value(store.get_bytes(spec.ref.digest), spec.ref.kind)
    return values


def _split_outputs(step: Step, result: Any) -> dict[str, Any]:
    if len(step.outputs) == 1:
        return {step.outputs[0]: result}
    if not isinstance(result, tuple | list) or len(result) != len(step.outputs):
        raise ValidationError(
            f"step {step.name!r} declares outputs {list(step.outputs)} and must return a tuple "
            f"of {len(step.outputs)} values; it returned {type_name(result)}"
        )
    return dict(zip(step.outputs, result, strict=True))


def _check_type(step: Step, value: Any) -> None:
    expected = step.type_hints.get("return")
    if len(step.outputs) != 1 or not isinstance(expected, type) or expected is type(None):
        return  # generics, unions and tuples are documentation, not checked
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return  # an int is a fine float, as type checkers agree
    if not isinstance(value, expected):
        raise ValidationError(
            f"step {step.name!r} returned {type_name(value)}; its annotation says "
            f"{expected.__qualname__}"
        )


def _attempt(task: StepTask, context: StepContext, store: ArtifactStore) -> StepResult:
    values = _load_inputs(task, store)
    token = _CONTEXT.set(context)
    try:
        result = call_with_timeout(lambda: task.step.fn(**values), task.step.timeout_s)
    finally:
        _CONTEXT.reset(token)
    _check_type(task.step, result)
    outputs = _split_outputs(task.step, result)
    refs = {}
    for name, value in outputs.items():
        data, kind = dump_value(value)
        refs[name] = ValueRef(store.put_bytes(data).digest, kind, type_name(value))
    return StepResult(
        ok=True,
        attempts=context.attempt,
        start_ms=0,
        end_ms=0,
        outputs=refs,
        values=outputs if task.keep_values else {},
    )


def execute_step(task: StepTask) -> StepResult:
    """Run one step with its retries; failures come back in the result, not raised."""
    store = ArtifactStore(task.settings.artifacts_url)
    start = now_ms()
    context = StepContext(
        name=task.node,
        pipeline=task.pipeline,
        pipeline_run_id=task.pipeline_run_id,
        step_run_id=task.step_run_id,
        attempt=1,
        settings=task.settings,
        _parent_run=task.tracking_run_id,
    )
    attempts = task.step.retries + 1
    with _captured() as logs:
        for attempt in range(1, attempts + 1):
            context.attempt = attempt
            try:
                result = _attempt(task, context, store)
                break
            except Exception as exc:
                message = (
                    str(exc)
                    if isinstance(exc, StepTimeoutError)
                    else f"{type(exc).__name__}: {exc}"
                )
                trace = traceback.format_exc()
                logs.write(f"attempt {attempt}/{attempts} failed: {message}\n{trace}")
                result = StepResult(
                    ok=False,
                    attempts=attempt,
                    start_ms=0,
                    end_ms=0,
                    error=message,
                    traceback=trace,
                )
                if attempt < attempts:
                    time.sleep(task.step.retry_backoff_s * 2 ** (attempt - 1))
    if context._client is not None:  # ends runs the step left open, flushes, disconnects
        try:
            context._client.close()
        except Exception as exc:  # what the step tracked is lost: the step did not succeed
            result.ok = False
            result.error = f"recording the step's tracking run failed: {exc!r}"
    result.start_ms, result.end_ms = start, now_ms()
    result.logs = logs.getvalue()
    result.tracking_run_id = context.tracking_run_id
    return result
