"""Settings: the only module that reads the environment or ``loopml.toml``.

Precedence, highest first: an explicit argument to :func:`load_settings`, the
environment (``LOOPML_*``), ``loopml.toml`` in the project folder, the default.
Nothing is read at import time; call :func:`load_settings` when a store is opened.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from loopml.core._errors import ConfigError

__all__ = ["ENV_VARS", "Settings", "load_config_table", "load_settings"]

CONFIG_FILE = "loopml.toml"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where loopml keeps its state and how it behaves; build it with :func:`load_settings`."""

    home: Path
    db_url: str
    artifacts_url: str
    system_metrics: bool = True
    system_metrics_interval_s: float = 10.0
    flush_interval_s: float = 2.0
    project_dir: Path = Path()
    auth: bool = False
    # A secret: kept out of repr so settings can be logged.
    token: str | None = field(default=None, repr=False)


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off); got {raw!r}")


def _parse_positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds; got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0; got {raw!r}")
    return value


# One registry of every LOOPML_* variable: setting name -> (variable, parser).
ENV_VARS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "home": ("LOOPML_HOME", lambda _n, raw: raw),
    "db_url": ("LOOPML_DB_URL", lambda _n, raw: raw),
    "artifacts_url": ("LOOPML_ARTIFACTS_URL", lambda _n, raw: raw),
    "system_metrics": ("LOOPML_SYSTEM_METRICS", _parse_bool),
    "system_metrics_interval_s": ("LOOPML_SYSTEM_METRICS_INTERVAL_S", _parse_positive_float),
    "flush_interval_s": ("LOOPML_FLUSH_INTERVAL_S", _parse_positive_float),
    "auth": ("LOOPML_AUTH", _parse_bool),
    "token": ("LOOPML_TOKEN", lambda _n, raw: raw),
}


def _read_document(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_config_table(project_dir: str | os.PathLike[str], *keys: str) -> dict[str, Any]:
    """The table at ``keys`` in ``loopml.toml`` (``{}`` when absent).

    ``load_config_table(dir, "pipelines", "train", "params")`` reads
    ``[pipelines.train.params]``. Other layers keep their own sections of the file
    this way, while this module stays the only reader of it.
    """
    path = Path(project_dir) / CONFIG_FILE
    node: Any = _read_document(path)
    for depth, key in enumerate(keys):
        node = node.get(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            where = ".".join(keys[: depth + 1])
            raise ConfigError(f"{path}: [{where}] must be a table; got {type(node).__name__}")
    return dict(node)


def _read_config_file(project_dir: Path) -> dict[str, Any]:
    path = project_dir / CONFIG_FILE
    document = _read_document(path)
    table = document.get("loopml", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [loopml] must be a table; got {type(table).__name__}")
    unknown = sorted(set(table) - set(ENV_VARS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} in [loopml]; "
            f"expected some of {', '.join(ENV_VARS)}"
        )
    parsed: dict[str, Any] = {}
    for key, value in table.items():
        _, parser = ENV_VARS[key]
        parsed[key] = parser(
            f"{path} [loopml].{key}", str(value).lower() if isinstance(value, bool) else str(value)
        )
    return parsed


def _default_db_url(home: Path) -> str:
    return f"sqlite:///{home / 'loopml.db'}"


def load_settings(
    *,
    project_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: ``overrides`` > ``environ`` > ``loopml.toml`` > defaults.

    Args:
        project_dir: folder holding ``loopml.toml``; the current directory by default.
            Relative paths in settings are taken relative to it.
        environ: the environment to read; ``os.environ`` by default.
        **overrides: any :class:`Settings` field, e.g. ``home=...`` or ``db_url=...``.

    Raises:
        ConfigError: an unknown setting, or a value that does not parse.
    """
    known = {f.name for f in fields(Settings)} - {"project_dir"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )
    base = Path(project_dir) if project_dir is not None else Path.cwd()
    env = os.environ if environ is None else environ

    values: dict[str, Any] = _read_config_file(base)
    for key, (variable, parser) in ENV_VARS.items():
        raw = env.get(variable)
        if raw not in (None, ""):
            values[key] = parser(variable, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})

    home = Path(values.pop("home", ".loopml"))
    if not home.is_absolute():
        home = (base / home).resolve()
    db_url = values.pop("db_url", None) or _default_db_url(home)
    artifacts_url = str(values.pop("artifacts_url", None) or home / "artifacts")
    if "://" not in artifacts_url and not Path(artifacts_url).is_absolute():
        artifacts_url = str((base / artifacts_url).resolve())
    return Settings(
        home=home,
        db_url=str(db_url),
        artifacts_url=artifacts_url,
        project_dir=base.resolve(),
        **values,
    )
