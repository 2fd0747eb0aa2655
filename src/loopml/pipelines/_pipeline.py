"""Pipelines: a function whose step calls, made on placeholders, draw the DAG."""

from __future__ import annotations

import contextvars
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

from loopml.core import ValidationError
from loopml.pipelines._step import Step, check_identifier

__all__ = [
    "Binding",
    "DatasetInput",
    "Node",
    "ParamRef",
    "Pipeline",
    "StepOutput",
    "current_builder",
    "dataset",
    "pipeline",
]

_BUILDER: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "loopml_pipeline_builder", default=None
)
REQUIRED = inspect.Parameter.empty


class _Placeholder:
    """Stands for a value that exists only when the pipeline runs."""

    def __bool__(self) -> bool:
        raise ValidationError(
            f"{self!r} has no value while the pipeline's DAG is drawn; pass it to a step "
            "and branch inside the step instead"
        )


@dataclass(frozen=True, eq=False)
class StepOutput(_Placeholder):
    """The output ``output`` of node ``node``, as seen while drawing the DAG."""

    node: str
    output: str

    def __repr__(self) -> str:
        return f"<output {self.node}.{self.output}>"


@dataclass(frozen=True, eq=False)
class ParamRef(_Placeholder):
    """A pipeline parameter, resolved when the pipeline runs."""

    name: str

    def __repr__(self) -> str:
        return f"<param {self.name}>"


@dataclass(frozen=True, eq=False)
class DatasetInput(_Placeholder):
    """A dataset version read by a step: the latest at run start, or a pinned one."""

    name: str
    version: int | None = None

    @property
    def ref(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        return f"<dataset {self.ref}>"


def dataset(name: str, version: int | None = None) -> DatasetInput:
    """A dataset as a step input: the step receives it as a pandas DataFrame.

    Without ``version`` the newest version at the start of each run is read, so a new
    version invalidates the steps that read it, and only those.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"dataset name must be a non-empty string; got {name!r}")
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ValidationError(f"dataset {name!r}: version must be an integer >= 1")
    return DatasetInput(name, version)


@dataclass(frozen=True)
class Binding:
    """Where one argument of a node comes from: ``kind`` is const, param, output or dataset."""

    kind: str
    value: Any = None  # const: the value; param: its name; dataset: a DatasetInput
    node: str = ""  # output: the upstream node
    output: str = ""  # output: which of its outputs

    def describe(self) -> str:
        if self.kind == "output":
            return f"{self.node}.{self.output}"
        if self.kind == "param":
            return f"param:{self.value}"
        if self.kind == "dataset":
            return f"dataset:{self.value.ref}"
        return "const"


@dataclass
class Node:
    """One step call in the DAG."""

    name: str
    step: Step
    bindings: dict[str, Binding]
    upstream: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, params: set[str]) -> None:
        self.params = params
        self.nodes: dict[str, Node] = {}

    def _bind(self, node: str, arg: str, value: Any) -> Binding:
        if isinstance(value, StepOutput):
            return Binding("output", node=value.node, output=value.output)
        if isinstance(value, ParamRef):
            return Binding("param", value.name)
        if isinstance(value, DatasetInput):
            return Binding("dataset", value)
        if isinstance(value, list | tuple | dict | set):
            items = value.values() if isinstance(value, dict) else value
            if any(isinstance(item, _Placeholder) for item in items):
                raise ValidationError(
                    f"step {node!r}, argument {arg!r}: a step output, parameter or dataset "
                    "inside a container cannot be resolved; pass each as its own argument"
                )
        return Binding("const", value)

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name, counter = step.name, 2
        while name in self.nodes:
            name, counter = f"{step.name}_{counter}", counter + 1
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ValidationError(f"step {step.name!r} called with bad arguments: {exc}") from None
        bound.apply_defaults()
        bindings = {arg: self._bind(name, arg, value) for arg, value in bound.arguments.items()}
        upstream = sorted({b.node for b in bindings.values() if b.kind == "output"})
        self.nodes[name] = Node(name, step, bindings, upstream)
        outputs = tuple(StepOutput(name, output) for output in step.outputs)
        return outputs[0] if len(outputs) == 1 else outputs


def current_builder() -> _Builder | None:
    """The DAG being drawn, while a pipeline function runs to draw it."""
    return _BUILDER.get()


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    annotation: Any

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class Pipeline:
    """A DAG of steps, drawn by calling its function on placeholders.

    Example::

        @pipeline
        def train(lr: float = 0.1):
            frame = load(dataset("flights"))
            fit(frame, lr)

        train.run(params={"lr": 0.05})
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = check_identifier("pipeline", name or fn.__name__)
        self.__doc__ = fn.__doc__
        hints: dict[str, Any]
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        self.params: dict[str, ParamSpec] = {}
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ValidationError(f"pipeline {self.name!r}: *args and **kwargs are not allowed")
            self.params[param.name] = ParamSpec(
                param.name, param.default, hints.get(param.name, param.annotation)
            )

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={len(self.nodes)})"

    @cached_property
    def nodes(self) -> dict[str, Node]:
        """Every node, in an order where each comes after its upstream nodes."""
        builder = _Builder(set(self.params))
        token = _BUILDER.set(builder)
        try:
            self.fn(**{name: ParamRef(name) for name in self.params})
        except (TypeError, AttributeError) as exc:
            raise ValidationError(
                f"pipeline {self.name!r} could not be drawn: {exc}. Parameters and step "
                "outputs are placeholders while the DAG is drawn; compute with them inside "
                "a step"
            ) from exc
        finally:
            _BUILDER.reset(token)
        if not builder.nodes:
            raise ValidationError(f"pipeline {self.name!r} calls no steps")
        return builder.nodes  # insertion order is already topological

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(upstream, downstream)`` pairs."""
        return [(up, node.name) for node in self.nodes.values() for up in node.upstream]

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or not."""
        found: set[str] = set()
        for node in self.nodes.values():  # topological order: one pass suffices
            if any(up == name or up in found for up in node.upstream):
                found.add(node.name)
        return found

    def tree(self, statuses: Mapping[str, str] | None = None) -> str:
        from loopml.pipelines._render import render_tree

        return render_tree(self, statuses)

    def to_dot(self) -> str:
        from loopml.pipelines._render import render_dot

        return render_dot(self)

    def to_mermaid(self) -> str:
        from loopml.pipelines._render import render_mermaid

        return render_mermaid(self)

    def run(self, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run the pipeline; see :func:`loopml.pipelines.run_pipeline` for ``options``."""
        from loopml.pipelines._runner import run_pipeline

        return run_pipeline(self, params, **options)


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name="train")``.

    The function's parameters are the run parameters; their defaults are the
    defaults, overridden by ``loopml.toml`` ``[pipelines.NAME.params]``, then by
    ``run(params=...)`` or ``loopml run ... --param key=value``.
    """
    if fn is not None:
        return Pipeline(fn, name=name)
    return lambda f: Pipeline(f, name=name)
