"""The one exception tree of loopml.

Every error loopml raises on purpose derives from :class:`LoopmlError`, and each
also subclasses the builtin that fits, so callers can catch either::

    LoopmlError(Exception)
    ├── NotFoundError(LoopmlError, LookupError)        a run, experiment, blob ... does not exist
    ├── AlreadyExistsError(LoopmlError, ValueError)    a name or id is taken
    ├── ValidationError(LoopmlError, ValueError)       the caller's input is wrong
    │   └── ConfigError                                a setting or loopml.toml is wrong
    ├── PermissionDeniedError(LoopmlError, PermissionError)  the caller may not do this
    ├── IntegrityError(LoopmlError)                    stored bytes do not match their digest
    └── BackendError(LoopmlError, RuntimeError)        the database or object store failed

Messages name the thing, what was expected and what was received; a re-raise
chains the cause with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "ConfigError",
    "IntegrityError",
    "LoopmlError",
    "NotFoundError",
    "PermissionDeniedError",
    "ValidationError",
]


class LoopmlError(Exception):
    """Root of every error loopml raises on purpose."""


class NotFoundError(LoopmlError, LookupError):
    """Raised when a named or identified thing does not exist in the store."""


class AlreadyExistsError(LoopmlError, ValueError):
    """Raised when creating something whose name or id is already taken."""


class ValidationError(LoopmlError, ValueError):
    """Raised when the caller's input does not have the expected shape or value."""


class ConfigError(ValidationError):
    """Raised when a setting, an environment variable or ``loopml.toml`` is invalid."""


class PermissionDeniedError(LoopmlError, PermissionError):
    """Raised when the caller's role does not allow the action."""


class IntegrityError(LoopmlError):
    """Raised when stored bytes no longer match the digest they were stored under."""


class BackendError(LoopmlError, RuntimeError):
    """Raised when the metadata database or the object store fails."""
