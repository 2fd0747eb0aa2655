"""``loopml feedback import FILE``: true labels for logged predictions, in bulk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli._app import app, settings_from
from loopml.cli._output import print_json

feedback_app = typer.Typer(
    help="Feedback: true labels for logged predictions.", no_args_is_help=True
)
app.add_typer(feedback_app, name="feedback")

SHOWN_UNKNOWN = 10


@feedback_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV, JSONL or Parquet with columns prediction_id, label.")
    ],
    source: Annotated[
        str | None, typer.Option(help="Where the labels came from (default file:NAME).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Store the file's labels; ids not in the prediction log are reported, not stored.

    Exits 1 when no id of the file was found (the wrong file or store, most likely).
    """
    from loopml.serving import Feedback

    with Feedback(settings_from(ctx)) as feedback:
        result = feedback.import_file(file, source=source)
    if json_out:
        print_json({"accepted": result.accepted, "unknown": result.unknown})
    else:
        typer.echo(f"accepted {result.accepted}, unknown {len(result.unknown)}")
        if result.unknown:
            shown = ", ".join(result.unknown[:SHOWN_UNKNOWN])
            more = len(result.unknown) - SHOWN_UNKNOWN
            tail = f" and {more} more" if more > 0 else ""
            typer.echo(f"unknown prediction ids: {shown}{tail}", err=True)
    if result.accepted == 0:
        raise typer.Exit(1)
