"""Entrypoint: the ``loopml`` command line (Typer + Rich). No business logic lives here."""

from loopml.cli import (  # noqa: F401 - importing registers commands
    _data,
    _db,
    _demo,
    _governance,
    _models,
    _pipelines,
    _runs,
    _scheduler,
)
from loopml.cli._app import app, main

__all__ = ["app", "main"]
