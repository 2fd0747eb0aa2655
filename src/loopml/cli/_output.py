"""Printing for the CLI: Rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["console", "err_console", "format_ms", "print_json", "to_jsonable"]

console = Console()
err_console = Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for entities, enums and paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def print_json(value: Any) -> None:
    """Write ``value`` as JSON to stdout, unstyled, for scripts."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=True) + "\n")


def format_ms(timestamp_ms: int | None) -> str:
    """A timestamp in milliseconds as local ``YYYY-MM-DD HH:MM:SS``."""
    if timestamp_ms is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_number(value: float) -> str:
    """A metric value, short."""
    return f"{value:.6g}"
