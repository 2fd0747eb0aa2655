"""The error tree: one root, and each error also catchable as the builtin that fits."""

from __future__ import annotations

import pytest

import loopml.core as core


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (core.NotFoundError, LookupError),
        (core.AlreadyExistsError, ValueError),
        (core.ValidationError, ValueError),
        (core.ConfigError, ValueError),
        (core.PermissionDeniedError, PermissionError),
        (core.BackendError, RuntimeError),
        (core.IntegrityError, Exception),
    ],
)
def test_error_is_loopml_error_and_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, core.LoopmlError)
    assert issubclass(error, builtin)
    assert error.__name__.endswith("Error")
