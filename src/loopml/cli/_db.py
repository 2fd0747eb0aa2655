"""``loopml version`` and ``loopml db ...``."""

from __future__ import annotations

import platform

import typer

import loopml
from loopml.cli._app import app, settings_from
from loopml.cli._output import console
from loopml.store import HEAD_REVISION, upgrade_store

db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def version() -> None:
    """Print loopml's version and the Python it runs on."""
    console.print(f"loopml {loopml.__version__} (Python {platform.python_version()})")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the metadata database or migrate it to the newest schema."""
    settings = settings_from(ctx)
    store, before = upgrade_store(settings.db_url)
    try:
        if before == HEAD_REVISION:
            console.print(f"{store.display_url} is up to date (schema revision {HEAD_REVISION})")
        else:
            console.print(f"{store.display_url}: schema revision {before} -> {HEAD_REVISION}")
    finally:
        store.close()
