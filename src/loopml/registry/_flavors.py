"""Flavors: how a registered artifact becomes a model object again, and version checks."""

from __future__ import annotations

import io
import warnings
from importlib import metadata
from typing import Any

from loopml.core import ValidationError

__all__ = ["FLAVORS", "LibraryVersionWarning", "check_libraries", "load_flavor"]

FLAVORS = ("sklearn", "onnx")


class LibraryVersionWarning(UserWarning):
    """A model is loaded under a different major version of a library it was trained with."""


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_libraries(libraries: dict[str, str], ref: str) -> list[str]:
    """Warn for each library whose installed major version differs from training's."""
    problems = []
    for name, trained in sorted(libraries.items()):
        if name in ("python",):
            continue
        installed = _installed(name)
        if installed is None:
            problems.append(f"{name} {trained} was used to train {ref} but is not installed")
        elif installed.split(".")[0] != str(trained).split(".")[0]:
            problems.append(
                f"{ref} was trained with {name} {trained}; {installed} is installed "
                "(a different major version: predictions may differ or loading may fail)"
            )
    for problem in problems:
        warnings.warn(problem, LibraryVersionWarning, stacklevel=3)
    return problems


def load_flavor(flavor: str, data: bytes) -> Any:
    """The model object in ``data`` (bytes already checked against their digest)."""
    if flavor == "sklearn":
        import joblib

        return joblib.load(io.BytesIO(data))
    if flavor == "onnx":
        try:
            import onnxruntime
        except ImportError as exc:
            raise ValidationError(
                "loading an ONNX model needs onnxruntime: pip install 'loopml[onnx]'"
            ) from exc
        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    raise ValidationError(f"unknown model flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")
