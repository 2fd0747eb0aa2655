"""The ``loopml`` command: global options, sub-apps, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from loopml.core import LoopmlError, Settings, load_settings

__all__ = ["app", "main", "settings_from"]

app = typer.Typer(
    name="loopml",
    help="loopml: closed-loop MLOps. Track runs, and (soon) version data, register, serve and "
    "monitor models, with a controller that keeps them good.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="loopml home folder (default ./.loopml; env LOOPML_HOME).")
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(help="Metadata database URL (default SQLite in the home; env LOOPML_DB_URL)."),
    ] = None,
    artifacts_url: Annotated[
        str | None,
        typer.Option(help="Artifact store URL or folder (env LOOPML_ARTIFACTS_URL)."),
    ] = None,
) -> None:
    ctx.obj = {"home": home, "db_url": db_url, "artifacts_url": artifacts_url}


def settings_from(ctx: typer.Context) -> Settings:
    """Settings with the global options applied over environment and loopml.toml."""
    overrides = (ctx.find_root().obj or {}) if ctx else {}
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def main() -> None:
    """Console entry point: a LoopmlError becomes one line on stderr and exit code 1."""
    try:
        app()
    except LoopmlError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
