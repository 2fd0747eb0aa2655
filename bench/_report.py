"""The readable table printed without ``--json``: figures, ratio, goal, and whether it is met."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench._suite import Suite

__all__ = ["print_tables"]


def _cell(figures: Mapping[str, Any], workload: str) -> str:
    """``1.234 s (8,100 calls/s)`` from a workload's figures; ``-`` when missing."""
    found = figures.get(workload)
    if isinstance(found, Mapping) and "peak_mb" in found:
        return f"{found['peak_mb']:,.0f} MB peak"
    if not isinstance(found, Mapping) or "seconds" not in found:
        return "-"
    text = f"{found['seconds']:.3f} s"
    rates = [
        f"{value:,.0f} {key.removesuffix('_per_s')}/s"
        for key, value in found.items()
        if key.endswith("_per_s")
    ]
    if "returned" in found:
        rates.append(f"{found['returned']} found")
    return f"{text} ({', '.join(rates)})" if rates else text


def _title(suite: Suite, result: Mapping[str, Any]) -> str:
    def name(label: str, default: str) -> str:
        figures = result.get(label, {})
        return f"{figures.get('package', default)} {figures.get('version', '?')}"

    return f"{suite.name}: {name('loopml', 'loopml')} vs {name('peer', suite.peer)}"


def print_tables(results: Mapping[str, Mapping[str, Any]], suites: Mapping[str, Suite]) -> None:
    """Print one table per suite to stdout, then its errors, if any."""
    console = Console()
    if not console.is_terminal:  # piped: rich would assume 80 columns and wrap every cell
        console = Console(width=120)
    for name, result in results.items():
        suite = suites[name]
        table = Table(title=_title(suite, result), title_justify="left")
        for column in ("workload", "loopml", suite.peer, "ratio", "goal", "met"):
            table.add_column(column, justify="left" if column == "workload" else "right")
        for workload in suite.workloads:
            ratio = result["ratios"].get(workload)
            goal, limit = suite.goals.get(workload), suite.max_seconds.get(workload)
            met = "-"
            if ratio is not None:
                ok = goal is None or ratio >= goal
                if limit is not None:
                    ok = ok and result["loopml"][workload]["seconds"] <= limit
                met = "[green]yes[/]" if ok else "[red]no[/]"
            goals = ([] if goal is None else [f">= {goal:g}x"]) + (
                [] if limit is None else [f"loopml <= {limit:g} s"]
            )
            table.add_row(
                workload,
                _cell(result["loopml"], workload),
                _cell(result["peer"], workload),
                "-" if ratio is None else f"{ratio:.1f}x",
                ", ".join(goals),
                met,
            )
        console.print(table)
        verdict = "[green]meets its goals[/]" if result["meets_goals"] else "[red]misses a goal[/]"
        console.print(f"{name}: {verdict}  (ratio = {suite.peer} seconds / loopml seconds)")
        for error in result["errors"]:
            console.print(f"[red]error:[/] {escape(error)}", highlight=False)
        console.print()
