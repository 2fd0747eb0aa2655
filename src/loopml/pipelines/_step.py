"""Steps: plain Python functions, decorated with how they run, cache and retry."""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
import typing
from collections.abc import Callable, Sequence
from functools import cached_property, update_wrapper
from typing import Any, overload

import blake3

from loopml.compute import Resources
from loopml.core import ValidationError

__all__ = ["Step", "step"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


def check_identifier(kind: str, name: str) -> str:
    """``name`` if it is a usable step, output or pipeline name; else a clear error."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"{kind} {name!r} is not a valid name: use letters, digits, '_' and '-', "
            "starting with a letter or '_', at most 128 characters"
        )
    return name


def _source_digest(fn: Callable[..., Any]) -> str:
    """A digest of the function's code, the heart of the step's cache key.

    Only the step's own source counts: a change in a helper it calls does not
    invalidate the cache; bump ``cache_version`` for that.
    """
    try:
        material = textwrap.dedent(inspect.getsource(fn)).encode()
    except (OSError, TypeError):  # no source file (REPL, exec): fall back to bytecode
        code = fn.__code__
        material = code.co_code + repr(code.co_consts).encode()
    return blake3.blake3(material).hexdigest()


def _load_step(module: str, qualname: str) -> Step:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step):
        raise ValidationError(f"{module}:{qualname} is no longer a loopml step")
    return target


class Step:
    """A function that a pipeline runs as one node of its DAG.

    Called inside a ``@pipeline`` definition it does not run: it adds a node and
    returns placeholders for its outputs. Called anywhere else it is the plain
    function, so steps stay easy to unit-test.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        outputs: Sequence[str] | None = None,
        retries: int = 0,
        retry_backoff_s: float = 1.0,
        timeout_s: float | None = None,
        cache: bool = True,
        cache_version: str = "",
        deps: Sequence[str] = (),
        cpus: float = 1.0,
        memory_mb: int | None = None,
        gpus: float = 0.0,
    ) -> None:
        if not callable(fn):
            raise ValidationError(f"@step needs a function; got {type(fn).__name__}")
        self.fn = fn
        self.name = check_identifier("step", name or fn.__name__)
        self.outputs = tuple(check_identifier("output", o) for o in (outputs or ("output",)))
        if len(set(self.outputs)) != len(self.outputs):
            raise ValidationError(f"step {self.name!r}: output names repeat: {self.outputs}")
        if retries < 0:
            raise ValidationError(f"step {self.name!r}: retries must be >= 0; got {retries}")
        if retry_backoff_s < 0:
            raise ValidationError(f"step {self.name!r}: retry_backoff_s must be >= 0")
        if timeout_s is not None and timeout_s <= 0:
            raise ValidationError(f"step {self.name!r}: timeout_s must be > 0; got {timeout_s}")
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.timeout_s = timeout_s
        self.cache = cache
        self.cache_version = str(cache_version)
        self.deps = tuple(deps)
        self.resources = Resources(cpus=cpus, memory_mb=memory_mb, gpus=gpus)
        self.signature = inspect.signature(fn)
        update_wrapper(self, fn)
        # Read the code now: a file edited after import must not be cached under the
        # new code's key while the old code runs.
        self.source_digest = _source_digest(fn)

    def __repr__(self) -> str:
        return f"Step({self.name!r})"

    @cached_property
    def type_hints(self) -> dict[str, Any]:
        """Annotations resolved to types; empty where they cannot be resolved."""
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # forward references to names the module lacks: skip checks
            return {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from loopml.pipelines._pipeline import current_builder

        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # Worker processes import the step by name when they can, so only a
        # reference travels; steps in __main__ or a closure travel by value.
        module = getattr(self.fn, "__module__", None)
        qualname = getattr(self.fn, "__qualname__", "")
        if module and module != "__main__" and "<locals>" not in qualname:
            try:
                if _load_step(module, qualname) is self:
                    return (_load_step, (module, qualname))
            except (ImportError, AttributeError, ValidationError):
                pass
        return (_rebuild_step, (self.fn, self._options()))

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outputs": self.outputs,
            "retries": self.retries,
            "retry_backoff_s": self.retry_backoff_s,
            "timeout_s": self.timeout_s,
            "cache": self.cache,
            "cache_version": self.cache_version,
            "deps": self.deps,
            "cpus": self.resources.cpus,
            "memory_mb": self.resources.memory_mb,
            "gpus": self.resources.gpus,
        }


def _rebuild_step(fn: Callable[..., Any], options: dict[str, Any]) -> Step:
    return Step(fn, **options)


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    retry_backoff_s: float = 1.0,
    timeout_s: float | None = None,
    cache: bool = True,
    cache_version: str = "",
    deps: Sequence[str] = (),
    cpus: float = 1.0,
    memory_mb: int | None = None,
    gpus: float = 0.0,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a pipeline step: ``@step`` or ``@step(retries=2, timeout_s=60)``.

    Args:
        name: the node's name (default: the function's name).
        outputs: names of several outputs; the function then returns a tuple of the
            same length. One output called ``output`` by default.
        retries: extra attempts after a failure, waiting ``retry_backoff_s`` and then
            twice as long each time.
        timeout_s: the longest one attempt may run.
        cache: reuse outputs when code, parameters, dependencies and inputs are
            unchanged (default on).
        cache_version: change it to invalidate the cache by hand (e.g. when a helper
            the step calls has changed).
        deps: distribution names (``"scikit-learn"``) whose installed versions are
            part of the cache key.
        cpus, memory_mb, gpus: what the step needs; Ray schedules by them.
    """
    if fn is not None:
        return Step(fn, **options)
    return lambda f: Step(f, **options)
