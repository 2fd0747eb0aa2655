"""Foundation: settings, errors, ids, the clock and the entities every layer shares."""

from loopml.core._entities import (
    ArtifactRef,
    DatasetVersion,
    Experiment,
    MetricPoint,
    Run,
    RunStatus,
)
from loopml.core._environment import capture_environment
from loopml.core._errors import (
    AlreadyExistsError,
    BackendError,
    ConfigError,
    IntegrityError,
    LoopmlError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from loopml.core._ids import new_id, now_ms
from loopml.core._lazy import lazy_exports
from loopml.core._repeat import repeat
from loopml.core._settings import ENV_VARS, Settings, load_config_table, load_settings

__all__ = [
    "ENV_VARS",
    "AlreadyExistsError",
    "ArtifactRef",
    "BackendError",
    "ConfigError",
    "DatasetVersion",
    "Experiment",
    "IntegrityError",
    "LoopmlError",
    "MetricPoint",
    "NotFoundError",
    "PermissionDeniedError",
    "Run",
    "RunStatus",
    "Settings",
    "ValidationError",
    "capture_environment",
    "lazy_exports",
    "load_config_table",
    "load_settings",
    "new_id",
    "now_ms",
    "repeat",
]
