"""Find a pipeline by reference: ``package.module:name`` or ``path/to/file.py:name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from loopml.core import NotFoundError, ValidationError
from loopml.pipelines._pipeline import Pipeline

__all__ = ["load_pipeline", "reference_of"]


def _import_file(path: Path) -> object:
    """Import a file as a module named after it, with its folder on ``sys.path``.

    Being importable by name matters: pool and Ray workers import the steps by
    module name instead of receiving their code.
    """
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == (
        path.resolve()
    ):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_pipeline(ref: str) -> Pipeline:
    """The pipeline ``ref`` names; the attribute may be left out if the module has one."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError("a pipeline reference looks like module:name or file.py:name")
    target, _, attr = ref.strip().rpartition(":") if ":" in ref else (ref.strip(), "", "")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise NotFoundError(f"pipeline file {target} does not exist")
        module = _import_file(path)
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise NotFoundError(
                f"cannot import module {target!r} for pipeline {ref!r}: {exc}"
            ) from exc
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, Pipeline):
            kind = "nothing" if found is None else type(found).__name__
            raise NotFoundError(f"{target} has no pipeline {attr!r} (found {kind})")
        return found
    pipelines = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if len(pipelines) != 1:
        names = ", ".join(p.name for p in pipelines) or "none"
        raise ValidationError(
            f"{target} defines {len(pipelines)} pipelines ({names}); name one as {target}:NAME"
        )
    return pipelines[0]


def reference_of(pipeline: Pipeline) -> str | None:
    """How to load ``pipeline`` again later (for resume and schedules), when known."""
    module_name = getattr(pipeline.fn, "__module__", None)
    module = sys.modules.get(module_name or "")
    if module is None:
        return None
    attr = next((k for k, v in vars(module).items() if v is pipeline), None)
    if attr is None:
        return None
    if module_name == "__main__" or module_name == Path(getattr(module, "__file__", "") or "").stem:
        source = getattr(module, "__file__", None)
        if source:
            return f"{Path(source).resolve()}:{attr}"
        return None
    return f"{module_name}:{attr}"
