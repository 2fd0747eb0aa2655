"""Entrypoint: the ``loopml`` command line (Typer + Rich). No business logic lives here.

Each command group lives in its own module and registers itself on import. ``main()``
imports only the group the command line names, so ``loopml data add`` does not pay
for importing the registry or scikit-learn; ``--help`` and unknown words load all.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["app", "load_commands", "main"]

# First word on the command line -> the module that registers it.
GROUPS = {
    "version": "_db",
    "db": "_db",
    "demo": "_demo",
    "data": "_data",
    "experiments": "_runs",
    "runs": "_runs",
    "run": "_pipelines",
    "pipelines": "_pipelines",
    "scheduler": "_scheduler",
    "events": "_scheduler",
    "users": "_governance",
    "audit": "_governance",
    "models": "_models",
    "lineage": "_models",
    "deploy": "_deployments",
    "deployments": "_deployments",
    "rollback": "_deployments",
    "feedback": "_feedback",
    "predict": "_predict",
    "monitor": "_monitor",
    "predictions": "_predictions",
    "serve": "_serve",
    "loop": "_loop",
}
_OPTIONS_WITH_VALUES = {"--home", "--db-url", "--artifacts-url"}


def _first_word(argv: list[str]) -> str | None:
    """The command word, skipping global options and their values."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _OPTIONS_WITH_VALUES:
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def load_commands(argv: list[str] | None = None) -> Any:
    """Register the command group ``argv`` needs (every group when unsure); return the app."""
    word = None if argv is None else _first_word(argv)
    modules = [GROUPS[word]] if word in GROUPS else sorted(set(GROUPS.values()))
    for module in modules:
        importlib.import_module(f"loopml.cli.{module}")
    from loopml.cli._app import app as typer_app

    return typer_app


def main() -> None:
    """Console entry point: a LoopmlError becomes one line on stderr and exit code 1."""
    load_commands(sys.argv[1:])
    from loopml.cli._app import main as run_app

    run_app()


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command line, every group registered
        return load_commands()
    raise AttributeError(f"module 'loopml.cli' has no attribute {name!r}")
