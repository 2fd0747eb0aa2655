"""Policies from ``loopml.toml``: one ``[loop.<deployment>]`` table per deployment.

```toml
[loop.churn-api]
model = "churn"
pipeline = "train_pipe.py:train"
pipeline_params = { alpha = 0.1 }

[loop.churn-api.triggers]
drift_share = 0.3
schedule = "0 3 * * *"

[loop.churn-api.rollout]
steps = [{ weight = 0.1, predictions = 500 }, { weight = 0.5, seconds = "1h" }]
```

Durations are seconds, or text with a unit: ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from loopml.core import ConfigError, Settings, load_config_table
from loopml.loop._policy import (
    CanaryStep,
    Evaluation,
    Guardrails,
    LoopPolicy,
    Rollout,
    Triggers,
)

__all__ = ["load_policies", "parse_duration", "policy_from_dict"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_KEYS = frozenset(
    {"seconds", "max_wait_s", "step_timeout_s", "approval_timeout_s", "cooldown_s"}
)
_TOP = frozenset({"model", "pipeline", "pipeline_params", "cutoff_param"})
_SECTIONS: dict[str, type] = {
    "triggers": Triggers,
    "evaluation": Evaluation,
    "rollout": Rollout,
    "guardrails": Guardrails,
}


def parse_duration(where: str, value: object) -> float:
    """Seconds from a number or from text like ``"15m"``; ``where`` names the key."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be seconds or a duration like '15m'; got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ConfigError(
        f"{where} must be seconds or a duration like '90s', '15m', '2h', '1d'; got {value!r}"
    )


def _fields(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind) if f.name != "where"}


def _table(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table; got {value!r}")
    return dict(value)


def _known(where: str, table: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(allowed))}"
        )


def _durations(where: str, table: dict[str, Any]) -> dict[str, Any]:
    return {
        key: parse_duration(f"{where}.{key}", value) if key in _DURATION_KEYS else value
        for key, value in table.items()
    }


def _steps(where: str, value: object) -> tuple[CanaryStep, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of steps; got {value!r}")
    steps = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        table = _table(at, raw)
        _known(at, table, _fields(CanaryStep))
        if "weight" not in table:
            raise ConfigError(f"{at} needs weight (the canary's share, in (0, 1])")
        steps.append(CanaryStep(**_durations(at, table), where=at))
    return tuple(steps)


def _section(where: str, kind: type, raw: object) -> Any:
    table = _durations(where, _table(where, raw))
    _known(where, table, _fields(kind))
    if kind is Rollout and "steps" in table:
        table["steps"] = _steps(f"{where}.steps", table["steps"])
    return kind(**table, where=where)


def policy_from_dict(
    deployment: str, table: Mapping[str, Any], where: str | None = None
) -> LoopPolicy:
    """The policy of ``deployment`` from a ``[loop.<deployment>]`` table.

    Raises:
        ConfigError: an unknown key, a missing one, or a bad value, named by its key.
    """
    where = where or f"loop.{deployment}"
    table = _table(where, table)
    _known(where, table, _TOP | set(_SECTIONS))
    for key in ("model", "pipeline"):
        if key not in table:
            raise ConfigError(f"{where} needs {key}")
    sections = {
        key: _section(f"{where}.{key}", kind, table[key])
        for key, kind in _SECTIONS.items()
        if key in table
    }
    return LoopPolicy(
        deployment=deployment,
        model=table["model"],
        pipeline=table["pipeline"],
        pipeline_params=_table(f"{where}.pipeline_params", table.get("pipeline_params", {})),
        cutoff_param=table.get("cutoff_param"),
        where=where,
        **sections,
    )


def load_policies(settings: Settings) -> list[LoopPolicy]:
    """Every ``[loop.<deployment>]`` policy in the project's ``loopml.toml``, by name."""
    document = load_config_table(settings.project_dir, "loop")
    return [
        policy_from_dict(
            name, document[name], f"{settings.project_dir / 'loopml.toml'}: loop.{name}"
        )
        for name in sorted(document)
    ]
