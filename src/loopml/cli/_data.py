"""``loopml data ...``: ingest, add, list, show, validate, diff, split and check out datasets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, format_ms, print_json, to_jsonable
from loopml.core import DatasetVersion, ValidationError
from loopml.data import DataCatalog

data_app = typer.Typer(
    help="Datasets: ingest, version, validate, profile, diff, split.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _catalog(ctx: typer.Context, create: bool = True) -> DataCatalog:
    return DataCatalog(settings_from(ctx), create_store=create)


class _Bar:
    """A byte progress bar's handle: call it with bytes done; ``start`` sets the total."""

    def __init__(self, bar: Any, task: Any) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, done: int) -> None:
        self._bar.advance(self._task, done)

    def start(self, files: int, total: int) -> None:
        self._bar.update(self._task, total=total)


@contextmanager
def _progress(total: int | None, label: str) -> Iterator[_Bar]:
    """A byte progress bar on stderr; it draws only for work longer than a moment."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        yield _Bar(bar, bar.add_task(label, total=total))


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _version_dict(version: DatasetVersion) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(version)
    data["ref"] = version.ref
    data["files"] = version.file_count
    return data


def _print_report(report: Any) -> None:
    console.print(report.to_table())
    console.print(report.summary())


@data_app.command("ingest")
def ingest(
    ctx: typer.Context,
    path: Annotated[
        str,
        typer.Argument(help="CSV, TSV, Parquet or JSON-lines file; or a database URL with --sql."),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    expectations: Annotated[
        Path | None, typer.Option("--expectations", "-e", help="Expectations file (TOML or YAML).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Create the version even if fail-level checks fail (recorded)."
        ),
    ] = False,
    format_: Annotated[
        str | None,
        typer.Option("--format", help="csv, parquet or jsonl (default: from the file name)."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    sql: Annotated[
        str | None, typer.Option(help="SQL query to run against the database URL given as PATH.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Ingest a table into a new validated, profiled version.

    Identical content returns the existing version and stores nothing.
    """
    catalog = _catalog(ctx)
    try:
        total = 0 if sql else _size_of(Path(path)) if Path(path).exists() else 0
        with _progress(total, f"ingest {name}") as advance:
            result = catalog.ingest(
                path,
                name=name,
                expectations=expectations,
                force=force,
                format=format_,
                encoding=encoding,
                sql=sql,
                progress=advance,
            )
    except ValidationError as exc:
        report = getattr(exc, "report", None)
        if report is not None and not json_:
            _print_report(report)
        raise
    finally:
        catalog.close()
    if json_:
        print_json(
            {
                "created": result.created,
                "version": _version_dict(result.version),
                "validation": None if result.report is None else result.report.to_dict(),
            }
        )
        return
    if result.report is not None and result.report.results and not result.report.passed:
        _print_report(result.report)
    version = result.version
    verb = "created" if result.created else "unchanged: same content as"
    console.print(
        f"{verb} [bold]{version.ref}[/bold]: {version.row_count:,} rows, "
        f"{len(version.schema or [])} columns, digest {version.digest}"
    )


@data_app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="File or folder to version as it is.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    json_: JsonFlag = False,
) -> None:
    """Version a file or folder as it is, like `dvc add`.

    Identical content returns the existing version and stores nothing.
    """
    catalog = _catalog(ctx)
    try:
        with _progress(None, f"add {name}") as bar:
            result = catalog.add(path, name=name, progress=bar, on_scan=bar.start)
    finally:
        catalog.close()
    if json_:
        print_json({"created": result.created, "version": _version_dict(result.version)})
        return
    verb = "created" if result.created else "unchanged: same content as"
    version = result.version
    console.print(
        f"{verb} [bold]{version.ref}[/bold]: {version.file_count:,} files, "
        f"{version.bytes:,} bytes, digest {version.digest}"
    )


@data_app.command("list")
def list_(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """List datasets with their number of versions."""
    catalog = _catalog(ctx, create=False)
    rows = catalog.datasets()
    catalog.close()
    if json_:
        print_json([{"name": n, "versions": c, "latest": v} for n, c, v in rows])
        return
    table = Table("dataset", "versions", "latest", title="datasets")
    for name, count, latest in rows:
        table.add_row(name, str(count), f"{name}@{latest}")
    console.print(table)


@data_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (every version) or NAME@VERSION.")],
    json_: JsonFlag = False,
) -> None:
    """Show a dataset's versions, or one version with its schema, profile and validation."""
    catalog = _catalog(ctx, create=False)
    try:
        name, _, number = ref.partition("@")
        versions = [catalog.get(ref)] if number else catalog.versions(name)
        if json_:
            print_json({"name": name, "versions": [_version_dict(v) for v in versions]})
            return
        if not number:
            table = Table(
                "version",
                "kind",
                "rows",
                "files",
                "bytes",
                "created",
                "digest",
                title=f"dataset {name}",
            )
            for v in versions:
                table.add_row(
                    str(v.version),
                    v.kind,
                    "-" if v.row_count is None else f"{v.row_count:,}",
                    f"{v.file_count:,}",
                    f"{v.bytes:,}",
                    format_ms(v.created_ms),
                    v.digest[:19] + "…",
                )
            console.print(table)
            return
        _show_version(catalog, versions[0])
    finally:
        catalog.close()


def _show_version(catalog: DataCatalog, version: DatasetVersion) -> None:
    console.print(
        f"[bold]{version.ref}[/bold] ({version.kind}) digest {version.digest}"
        f"{'  [red]forced past failed checks[/red]' if version.forced else ''}"
    )
    console.print(
        f"source: {version.source.get('uri', version.source.get('type'))}, "
        f"created {format_ms(version.created_ms)}, "
        f"code {version.lineage.get('code', {}).get('git.commit', '-')}"
    )
    if version.kind == "files":
        console.print(f"{version.file_count:,} files, {version.bytes:,} bytes")
        return
    console.print(catalog.profile(version.ref).to_table())
    report = catalog.validation_report(version.ref)
    if report is not None:
        console.print(report.summary())


@data_app.command("validate")
def validate_(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file to check.")],
    expectations: Annotated[
        Path, typer.Option("--expectations", "-e", help="Expectations file (TOML or YAML).")
    ],
    json_: JsonFlag = False,
) -> None:
    """Check a file against expectations without creating a version.

    Exits 1 when a fail-level check fails.
    """
    from loopml.data import validate_file

    report = validate_file(path, expectations)
    if json_:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.passed:
        raise typer.Exit(1)


@data_app.command("diff")
def diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="NAME@VERSION to compare from.")],
    new: Annotated[str, typer.Argument(help="NAME@VERSION to compare to.")],
    json_: JsonFlag = False,
) -> None:
    """Schema changes, row counts and per-column distribution change between two versions."""
    catalog = _catalog(ctx, create=False)
    try:
        result = catalog.diff(old, new)
    finally:
        catalog.close()
    if json_:
        print_json(result.to_dict())
    else:
        console.print(result.to_table())


@data_app.command("checkout")
def checkout(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(help="NAME@VERSION of a file set (or a table: writes its Parquet file)."),
    ],
    dest: Annotated[Path, typer.Argument(help="Folder to write into.")],
) -> None:
    """Write a version's files into a folder, each checked against its digest."""
    catalog = _catalog(ctx, create=False)
    try:
        version = catalog.get(ref)
        if version.kind == "table":
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / f"{version.name}-{version.version}.parquet"
            catalog.artifacts.download(version.snapshot, target)
            console.print(f"wrote {target}")
            return
        with _progress(version.bytes, f"checkout {version.ref}") as advance:
            written = catalog.checkout(ref, dest, progress=advance)
        console.print(f"wrote {len(written):,} files under {os.fspath(dest)}")
    finally:
        catalog.close()


@data_app.command("split")
def split(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a table.")],
    kind: Annotated[str, typer.Option(help="random, stratified, group or time.")] = "random",
    column: Annotated[
        str | None, typer.Option(help="Label (stratified), group key (group) or timestamp (time).")
    ] = None,
    ratios: Annotated[
        str, typer.Option(help="Comma-separated shares, e.g. 0.7,0.15,0.15.")
    ] = "0.7,0.15,0.15",
    cut: Annotated[
        list[str] | None, typer.Option(help="Time cut (repeatable), for --kind time.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    split_name: Annotated[
        str, typer.Option("--name", help="Name to store the split under.")
    ] = "default",
    json_: JsonFlag = False,
) -> None:
    """Split a table version reproducibly and store the definition."""
    try:
        shares = tuple(float(r) for r in ratios.split(","))
    except ValueError:
        raise ValidationError(
            f"--ratios must be numbers separated by commas; got {ratios!r}"
        ) from None
    options: dict[str, Any] = {"kind": kind, "seed": seed}
    if kind == "time":
        options["cuts"] = tuple(cut or ())
        names = ("train", "test") if len(options["cuts"]) == 1 else ("train", "validation", "test")
        options["names"] = names[: len(options["cuts"]) + 1]
    else:
        options["ratios"] = shares
        if len(shares) == 2:
            options["names"] = ("train", "test")
    if column:
        options["column"] = column
    from loopml.data import SplitSpec

    catalog = _catalog(ctx, create=False)
    try:
        parts = catalog.split(ref, SplitSpec(**options), name=split_name)
    finally:
        catalog.close()
    counts = {part: len(rows) for part, rows in parts.items()}
    if json_:
        print_json({"name": split_name, "counts": counts})
        return
    table = Table("part", "rows", title=f"split {split_name!r} of {ref}")
    for part, count in counts.items():
        table.add_row(part, f"{count:,}")
    console.print(table)
