"""Entrypoint: the ``loopml`` command line (Typer + Rich). No business logic lives here."""

from loopml.cli import _data, _db, _demo, _pipelines, _runs  # noqa: F401 - importing registers commands
from loopml.cli._app import app, main

__all__ = ["app", "main"]
