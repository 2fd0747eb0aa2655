"""The checks every policy value goes through: each bad value is a ``ConfigError`` naming
its key and what was expected."""

from __future__ import annotations

import math
import re

from loopml.core import ConfigError

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "PIPELINE_REF",
    "check_count",
    "check_metric",
    "check_number",
    "fail",
    "higher_is_better",
]

METRICS = (
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "mae",
    "rmse",
    "mape",
    "r2",
)
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape"})


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (False for losses and errors)."""
    return metric not in LOWER_IS_BETTER


# module:name (dotted module) or a file, with :name unless the file has one pipeline
PIPELINE_REF = re.compile(
    r"^(?:[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"
    r"|[^:]*(?:\.py|[/\\][^:]*)(?::[A-Za-z_]\w*)?)$"
)


def fail(where: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"{where} must be {expected}; got {got!r}")


def check_number(
    where: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(where, "a finite number", value)
    if low is not None and (value < low or (strict_low and value == low)):
        relation = "greater than" if strict_low else "at least"
        raise fail(where, f"{relation} {low:g}", value)
    if high is not None and value > high:
        raise fail(where, f"at most {high:g}", value)
    return float(value)


def check_count(where: str, value: object, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise fail(where, f"a whole number >= {low}", value)
    return int(value)


def check_metric(where: str, value: object) -> str:
    if value not in METRICS:
        raise fail(where, f"one of {', '.join(METRICS)}", value)
    return str(value)
