"""A monitoring report as one self-contained HTML file: a summary of the current window
and plotly charts of drift, performance and latency over the report's windows.

plotly.js is embedded from the installed ``plotly`` package, once, inline: the file
opens offline and loads nothing from a CDN.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

from loopml.core import ValidationError
from loopml.monitoring._report import MonitorReport, WindowReport

__all__ = ["render_html", "write_html_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border-bottom: 1px solid #d9e2ec; padding: 0.3rem 0.8rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #c62828; font-weight: 600; } .muted { color: #7b8794; }
"""


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _x(window: WindowReport, by_time: bool) -> Any:
    return _when(window.start_ms) if by_time else window.index


def _figure_div(fig: Any) -> str:
    import plotly.io as pio  # type: ignore[import-untyped]

    fig.update_layout(height=360, margin={"l": 50, "r": 20, "t": 40, "b": 40})
    text: str = pio.to_html(
        fig, include_plotlyjs=False, full_html=False, config={"displaylogo": False}
    )
    return text


def _drift_figure(report: MonitorReport, by_time: bool) -> Any:
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    fig = go.Figure(layout={"title": "Data drift per feature (main version vs its training data)"})
    series: dict[str, tuple[list[Any], list[float]]] = {}
    for window in report.windows:
        main = window.version(window.main_version) if window.main_version else None
        if main is None or main.data_drift is None:
            continue
        for name, feature in main.data_drift.features.items():
            if feature.score is None:
                continue
            xs, ys = series.setdefault(f"{name} ({feature.method})", ([], []))
            xs.append(_x(window, by_time))
            ys.append(feature.score)
    for name, (xs, ys) in sorted(series.items()):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    psi_x, psi_y = [], []
    for window in report.windows:
        main = window.version(window.main_version) if window.main_version else None
        if main is not None and main.prediction_drift is not None:
            psi_x.append(_x(window, by_time))
            psi_y.append(main.prediction_drift.get("psi"))
    if psi_x:
        fig.add_trace(
            go.Scatter(x=psi_x, y=psi_y, mode="lines", name="predictions (PSI)", line_dash="dash")
        )
    fig.update_yaxes(title="drift score")
    return fig


def _performance_figure(report: MonitorReport, by_time: bool) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(layout={"title": "Performance from labels (and label coverage)"})
    refs = sorted({v.model_version for w in report.windows for v in w.versions})
    for ref in refs:
        metrics = sorted(
            {
                m
                for w in report.windows
                for v in w.versions
                if v.model_version == ref
                for m in v.performance
            }
        )
        for metric in metrics:
            xs, ys = [], []
            for window in report.windows:
                found = window.version(ref)
                if found is not None and metric in found.performance:
                    xs.append(_x(window, by_time))
                    ys.append(found.performance[metric])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"{ref} {metric}"))
        xs, ys = [], []
        for window in report.windows:
            found = window.version(ref)
            if found is not None and found.label_coverage is not None:
                xs.append(_x(window, by_time))
                ys.append(found.label_coverage)
        fig.add_trace(go.Bar(x=xs, y=ys, name=f"{ref} label coverage", opacity=0.25, yaxis="y2"))
    fig.update_layout(
        yaxis={"title": "metric"},
        yaxis2={"title": "label coverage", "overlaying": "y", "side": "right", "range": [0, 1]},
    )
    return fig


def _latency_figure(report: MonitorReport, by_time: bool) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(layout={"title": "Latency (ms) and error rate per version"})
    refs = sorted({v.model_version for w in report.windows for v in w.versions})
    for ref in refs:
        for quantile in ("0.5", "0.95", "0.99"):
            xs, ys = [], []
            for window in report.windows:
                found = window.version(ref)
                if found is not None and quantile in found.latency_ms:
                    xs.append(_x(window, by_time))
                    ys.append(found.latency_ms[quantile])
            name = f"{ref} p{round(float(quantile) * 100)}"
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
        xs, ys = [], []
        for window in report.windows:
            found = window.version(ref)
            if found is not None and found.error_rate is not None:
                xs.append(_x(window, by_time))
                ys.append(found.error_rate)
        fig.add_trace(go.Bar(x=xs, y=ys, name=f"{ref} error rate", opacity=0.3, yaxis="y2"))
    fig.update_layout(
        yaxis={"title": "ms"},
        yaxis2={"title": "error rate", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return fig


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if percent else f"{value:.4g}"


def _summary(report: MonitorReport) -> str:
    current = report.current
    if current is None:
        return "<p class='muted'>No predictions logged yet.</p>"
    rows = []
    for version in current.versions:
        drift = version.data_drift
        drift_text = "-"
        if drift is not None:
            names = drift.drifted_features
            css = "bad" if drift.drifted else ""
            listed = html.escape(", ".join(names)) if names else "none"
            drift_text = f"<span class='{css}'>{100 * drift.share_drifted:.0f}%</span> ({listed})"
        perf = ", ".join(f"{k} {v:.3f}" for k, v in sorted(version.performance.items())) or "-"
        rows.append(
            "<tr>"
            f"<td>{html.escape(version.model_version)}</td><td>{version.rows:,}</td>"
            f"<td>{drift_text}</td>"
            f"<td>{_fmt((version.prediction_drift or {}).get('psi'))}</td>"
            f"<td>{version.labelled:,} ({_fmt(version.label_coverage, True)})</td>"
            f"<td>{html.escape(perf)}</td>"
            f"<td>{_fmt(version.latency_ms.get('0.5'))} / {_fmt(version.latency_ms.get('0.95'))}"
            f" / {_fmt(version.latency_ms.get('0.99'))}</td>"
            f"<td>{_fmt(version.error_rate, True)}</td><td>{_fmt(version.fallback_rate, True)}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>version</th><th>rows</th><th>drifted features</th><th>prediction PSI</th>"
        "<th>labelled</th><th>performance</th><th>latency p50 / p95 / p99 ms</th>"
        "<th>errors</th><th>fallbacks</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(report: MonitorReport) -> str:
    """The report as one HTML document with plotly.js inline."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    by_time = not report.window.endswith("rows")
    current = report.current
    when = "-" if current is None else f"{_when(current.start_ms)} UTC"
    title = f"loopml monitoring: {report.deployment}"
    figures = [
        ("Drift over time", _drift_figure(report, by_time)),
        ("Performance over time", _performance_figure(report, by_time)),
        ("Latency and errors", _latency_figure(report, by_time)),
    ]
    charts = "".join(f"<h2>{name}</h2>{_figure_div(fig)}" for name, fig in figures)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Windows of {html.escape(report.window)}; {len(report.windows)} shown; "
        f"{report.rows_total:,} predictions monitored. Report {html.escape(report.id)}, "
        f"made {_when(report.created_ms)} UTC.</p>"
        f"<h2>Current window (from {when})</h2>{_summary(report)}{charts}</body></html>"
    )


def write_html_report(report: MonitorReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (atomically: a partial file never appears).

    Raises:
        ValidationError: the folder does not exist or the file cannot be written.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise ValidationError(f"HTML report {target}: folder {target.parent} does not exist")
    text = render_html(report)
    temp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        temp.write_text(text, encoding="utf-8")
        temp.replace(target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ValidationError(f"HTML report {target}: cannot write it: {exc}") from None
    return target
