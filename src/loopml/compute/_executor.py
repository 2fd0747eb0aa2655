"""The executor interface, the in-process executor, and the factory that picks one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from loopml.core import ValidationError

__all__ = ["EXECUTOR_KINDS", "Executor", "LocalExecutor", "Resources", "create_executor"]

EXECUTOR_KINDS = ("local", "process", "ray")


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task asks for. Ray schedules by it; the process pool runs one task per
    worker, and the in-process executor ignores it."""

    cpus: float = 1.0
    memory_mb: int | None = None
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus < 0:
            raise ValidationError(f"resources: cpus must be >= 0; got {self.cpus}")
        if self.gpus < 0:
            raise ValidationError(f"resources: gpus must be >= 0; got {self.gpus}")
        if self.memory_mb is not None and self.memory_mb <= 0:
            raise ValidationError(f"resources: memory_mb must be > 0; got {self.memory_mb}")


class Executor(Protocol):
    """Runs callables somewhere and hands back futures.

    ``in_process`` tells callers whether results and arguments stay in this process
    (then objects can be passed as they are, without a trip through storage).
    """

    kind: str
    in_process: bool
    max_parallel: int

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        resources: Resources | None = None,
        name: str = "task",
    ) -> Future[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs each task at once, in this process and thread; the future is already done."""

    kind = "local"
    in_process = True
    max_parallel = 1

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        resources: Resources | None = None,
        name: str = "task",
    ) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # the caller reads it from the future, as with a pool
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            future.set_exception(exc)
        return future

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def create_executor(
    kind: str, *, max_workers: int | None = None, ray_address: str | None = None
) -> Executor:
    """The executor called ``kind``: ``local``, ``process`` or ``ray``.

    ``ray_address`` is an existing cluster (``"127.0.0.1:6379"`` or ``"auto"``); without
    it a local Ray cluster bound to 127.0.0.1 is started for this executor and stopped
    by ``close()``. Ray needs ``pip install 'loopml[ray]'``.
    """
    if kind == "local":
        return LocalExecutor()
    if kind == "process":
        from loopml.compute._process import ProcessExecutor

        return ProcessExecutor(max_workers=max_workers)
    if kind == "ray":
        from loopml.compute._ray import RayExecutor

        return RayExecutor(address=ray_address, num_cpus=max_workers)
    raise ValidationError(f"executor must be one of {', '.join(EXECUTOR_KINDS)}; got {kind!r}")
