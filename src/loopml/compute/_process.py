"""A pool of worker processes that runs independent tasks in parallel."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import cloudpickle

from loopml.compute._executor import Resources

__all__ = ["ProcessExecutor", "run_pickled"]


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Keep ``spawn`` from running the caller's script again in each new worker.

    Functions travel by cloudpickle, by value when they live in ``__main__``, so a
    worker never needs the script; running it again would repeat its side effects
    (and start a pipeline inside every worker when the script has no
    ``if __name__ == "__main__":`` guard).
    """
    main = sys.modules.get("__main__")
    spec, path = getattr(main, "__spec__", None), getattr(main, "__file__", None)
    if main is None or (spec is None and path is None):
        yield
        return
    main.__spec__ = None
    if path is not None:
        del main.__file__
    try:
        yield
    finally:
        main.__spec__ = spec
        if path is not None:
            main.__file__ = path


def run_pickled(payload: bytes, sys_path: list[str]) -> Any:
    """Worker side: make the caller's import path ours, then unpickle and call."""
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    fn, args = cloudpickle.loads(payload)
    return fn(*args)


class ProcessExecutor:
    """Runs tasks in worker processes started with ``spawn``.

    ``spawn`` rather than ``fork``: the parent holds threads (the tracking buffer, the
    system sampler) and database connections that a forked child must not inherit.
    Functions travel by cloudpickle, so steps defined in ``__main__`` or a script file
    work; the workers get the parent's ``sys.path`` to import the rest.
    """

    kind = "process"
    in_process = False

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_parallel = max_workers or max(1, os.cpu_count() or 1)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.max_parallel, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        resources: Resources | None = None,
        name: str = "task",
    ) -> Future[Any]:
        payload = cloudpickle.dumps((fn, args))
        with _main_not_reimported():  # workers start inside submit()
            try:
                return self._pool.submit(run_pickled, payload, list(sys.path))
            except BrokenProcessPool:
                # A worker died (killed, out of memory, a crash in C code): the tasks it
                # held have failed; start a fresh pool for the rest.
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(run_pickled, payload, list(sys.path))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
