"""``loopml predict MODEL_REF --input FILE --output FILE``: batch scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli._app import app, settings_from
from loopml.cli._output import err_console, print_json


@app.command("predict")
def predict(
    ctx: typer.Context,
    model_ref: Annotated[str, typer.Argument(help="NAME@VERSION, NAME@ALIAS or NAME.")],
    input: Annotated[Path, typer.Option("--input", help="CSV, JSONL or Parquet to score.")],
    output: Annotated[Path, typer.Option("--output", help="Parquet or CSV to write.")],
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk.")] = 50_000,
    executor: Annotated[
        str, typer.Option(help="Where chunks are scored: local, process or ray.")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (process/ray executors).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="An existing Ray cluster (default: start a local one).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Score every row of a file with a registered model version, in chunks.

    The output holds the input columns, prediction, proba_<class> for classifiers and
    model_version, in input order.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.serving import predict_file

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"scoring {input.name}", total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        result = predict_file(
            settings_from(ctx),
            model_ref,
            input,
            output,
            chunk_rows=chunk_rows,
            executor=executor,
            max_workers=workers,
            ray_address=ray_address,
            progress=advance,
        )
    if json_out:
        print_json(
            {
                "rows": result.rows,
                "model_version": result.model_version,
                "seconds": round(result.seconds, 3),
                "chunks": result.chunks,
                "output": str(result.output),
            }
        )
    else:
        typer.echo(
            f"scored {result.rows:,} rows with {result.model_version} in "
            f"{result.seconds:.1f}s ({result.chunks} chunks) -> {result.output}"
        )
