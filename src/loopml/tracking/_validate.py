"""Checks on what users log, so bad input fails at the call that made it."""

from __future__ import annotations

import numbers
import re
from typing import Any

from loopml.core import ValidationError

__all__ = ["check_key", "check_name", "metric_value", "param_value", "step_value"]

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
_KEY = re.compile(r"^[\w\-./ :]+$")


def check_key(kind: str, key: object) -> str:
    """Return ``key`` if it is a valid name for a param, metric or tag."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _KEY.match(key):
        raise ValidationError(
            f"{kind} name must be 1-{MAX_KEY} characters of letters, digits, space and _-./:; "
            f"got {key!r}"
        )
    return key


def check_name(kind: str, name: object, limit: int = 256) -> str:
    """Return ``name`` if it is a valid experiment or run name: 1-``limit`` printable characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > limit or not name.isprintable():
        raise ValidationError(f"{kind} must be 1-{limit} printable characters; got {name!r}")
    return name


def metric_value(key: str, value: Any) -> float:
    """Return ``value`` as a float; NaN and infinities are kept, as MLflow users expect."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(
            f"metric {key!r} must be a real number; got {value!r} ({type(value).__name__})"
        )
    return float(value)


def step_value(key: str, step: Any) -> int:
    """Return ``step`` as an int."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise ValidationError(
            f"step of metric {key!r} must be an integer; got {step!r} ({type(step).__name__})"
        )
    return int(step)


def param_value(key: str, value: Any) -> str:
    """Return a param's value as the string that is stored."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise ValidationError(
            f"param {key!r} value is {len(text)} characters; expected at most {MAX_PARAM_VALUE}"
        )
    return text
