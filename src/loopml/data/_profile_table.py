"""Rich tables for profiles and profile diffs, sized to read in a 100-column terminal."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text

from loopml.data._profile_model import ColumnProfile, DatasetProfile

__all__ = ["format_value", "profile_table"]


def format_value(value: float | None, kind: str) -> str:
    """A short text for a statistic: ISO time for datetimes, 4 significant digits otherwise."""
    if value is None:
        return "-"
    if kind == "datetime":
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return f"{value:.6g}s"
        text = moment.isoformat(sep=" ", timespec="seconds")
        return text.removesuffix("+00:00").removesuffix(" 00:00:00")
    return f"{value:.4g}"


def _summary(column: ColumnProfile) -> str:
    if column.count == 0:
        return "all missing" if column.missing else "empty"
    if column.kind in ("numeric", "datetime"):
        low = format_value(column.min, column.kind)
        high = format_value(column.max, column.kind)
        text = f"{low} .. {high}; mean {format_value(column.mean, column.kind)}"
        if column.std is not None:
            text += f", std {format_value(column.std, column.kind)}"
        return text
    top = ", ".join(f"{_short(value)} ({count})" for value, count in (column.top_k or [])[:3])
    return f"{column.distinct} distinct; {top}"


def _short(text: str, width: int = 16) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def profile_table(prof: DatasetProfile) -> Table:
    """One row per column: name, kind, type, missing share and a short summary."""
    title = f"{prof.row_count:,} rows, {len(prof.columns)} columns"
    if not prof.exact_quantiles:
        title += " (quantiles estimated from a sample)"
    table = Table(title=Text(title), title_justify="left", expand=False)
    table.add_column("column", max_width=22, overflow="ellipsis", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("type", max_width=14, overflow="ellipsis", no_wrap=True)
    table.add_column("missing", justify="right", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for column in prof.columns.values():
        table.add_row(  # Text, not markup: names and values may hold "[...]"
            Text(column.name),
            column.kind,
            Text(column.dtype),
            f"{100 * column.missing_rate:.1f}%",
            Text(_summary(column)),
        )
    return table
