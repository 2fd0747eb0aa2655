"""Run parameters: defaults, then ``loopml.toml``, then what the caller passes."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from loopml.core import ValidationError, load_config_table
from loopml.pipelines._pipeline import ParamSpec, Pipeline

__all__ = ["parse_param_options", "resolve_params"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_param_options(options: list[str]) -> dict[str, str]:
    """``["lr=0.1", "name=x"]`` (from ``--param``) as a dict of strings."""
    parsed: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--param must look like key=value; got {option!r}")
        parsed[key.strip()] = value
    return parsed


def _target_type(spec: ParamSpec) -> Any:
    """The annotation, or the default's type when there is none."""
    if spec.annotation is not inspect.Parameter.empty:
        members = [a for a in typing.get_args(spec.annotation) if a is not type(None)]
        if (
            typing.get_origin(spec.annotation) in (typing.Union, types.UnionType)
            and len(members) == 1
        ):
            return members[0]  # Optional[X]: convert to X
        return spec.annotation
    if not spec.required and spec.default is not None:
        return type(spec.default)
    return str


def _coerce(spec: ParamSpec, raw: str, source: str) -> Any:
    """A string from the command line as the parameter's type."""
    kind = _target_type(spec)
    if kind is str or kind is Any:
        return raw
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("expected true or false")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
    except ValueError as exc:
        name = getattr(kind, "__name__", str(kind))
        raise ValidationError(
            f"parameter {spec.name!r} from {source} must be {name}; got {raw!r} ({exc})"
        ) from None
    try:  # lists, dicts, optionals: JSON when it parses, the string otherwise
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def resolve_params(
    pipeline: Pipeline,
    overrides: Mapping[str, Any] | None,
    project_dir: Path,
    *,
    strings: bool = False,
) -> dict[str, Any]:
    """Every parameter's value: override > ``[pipelines.NAME.params]`` > default.

    ``strings`` says the overrides came from a command line and are converted to the
    parameters' annotated types.
    """
    configured = load_config_table(project_dir, "pipelines", pipeline.name, "params")
    values: dict[str, Any] = {}
    given = dict(overrides or {})
    for source, layer in (("loopml.toml", configured), ("the caller", given)):
        unknown = sorted(set(layer) - set(pipeline.params))
        if unknown:
            known = ", ".join(pipeline.params) or "none"
            raise ValidationError(
                f"pipeline {pipeline.name!r} has no parameter(s) {', '.join(unknown)} "
                f"(from {source}); its parameters: {known}"
            )
    for name, spec in pipeline.params.items():
        if name in given:
            value = given[name]
            if strings and isinstance(value, str):
                value = _coerce(spec, value, "--param")
        elif name in configured:
            value = configured[name]
        elif not spec.required:
            value = spec.default
        else:
            raise ValidationError(
                f"pipeline {pipeline.name!r} needs parameter {name!r}: pass --param {name}=... "
                f"or set it in loopml.toml [pipelines.{pipeline.name}.params]"
            )
        values[name] = value
    return values
