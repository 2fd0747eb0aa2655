"""Model cards: the facts about one version, rendered as Markdown or self-contained HTML.

The facts come from the registry (the version, its gates, approvals, alias moves, ONNX
export), from lineage (run, pipeline run, dataset versions) and, unless turned off, from
feature importance computed on held-out rows. The words come from the model's editable
``card`` fields: ``purpose``, ``intended_use``, ``limitations`` and any other key, each
shown as a section.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Any

from loopml.core import now_ms
from loopml.registry._card_fields import CARD_FIELDS
from loopml.registry._entities import (
    AliasMove,
    Approval,
    GateReport,
    ModelVersion,
    RegisteredModel,
)
from loopml.registry._importance import FeatureImportance

__all__ = [
    "ModelCard",
    "build_card",
    "card_sections",
    "render_html",
    "render_markdown",
]

_PARTS = ("cv_mean", "cv_std", "train", "validation", "test")


@dataclass(frozen=True)
class ModelCard:
    """Everything a card shows about one version; render it with ``render_markdown``/``_html``."""

    model: RegisteredModel
    version: ModelVersion
    gates: GateReport | None
    approvals: list[Approval]
    alias_moves: list[AliasMove]
    lineage: dict[str, Any]
    importance: list[FeatureImportance] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated_ms: int = 0

    @property
    def fields(self) -> dict[str, str]:
        """The editable fields: the three standard ones first, then the rest by name."""
        card = self.model.card
        extra = sorted(k for k in card if k not in CARD_FIELDS)
        return {k: card.get(k, "") for k in (*CARD_FIELDS, *extra)}


def build_card(registry: Any, ref: str, *, importance: bool = True) -> ModelCard:
    """The facts of ``ref``'s card; ``importance=False`` skips the (slower) importances."""
    from loopml.registry._importance import feature_importance
    from loopml.registry._lineage import model_lineage

    version = registry.get(ref)
    moves = [
        m
        for m in registry.alias_history(version.model)
        if version.version in (m.from_version, m.to_version)
    ]
    found: list[FeatureImportance] = []
    notes: list[str] = []
    if importance:
        found, notes = feature_importance(registry, version)
    else:
        notes.append("feature importance not computed (--no-importance)")
    return ModelCard(
        model=registry.get_model(version.model),
        version=version,
        gates=registry.gate_report(version.ref),
        approvals=registry.approvals(version.ref),
        alias_moves=moves,
        lineage=model_lineage(registry.settings, version),
        importance=found,
        notes=notes,
        generated_ms=now_ms(),
    )


# -- sections: one structure, two renderers -------------------------------------------

Block = tuple[str, Any]  # ("p", text) | ("pre", text) | ("table", (headers, rows))


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metrics_table(metrics: dict[str, float]) -> Block:
    names: dict[str, dict[str, float]] = {}
    other: dict[str, float] = {}
    for key, value in metrics.items():
        part, dot, name = key.partition(".")
        if dot and part in _PARTS:
            names.setdefault(name, {})[part] = value
        elif not (dot and part == "cv"):  # per-fold values are summarised by cv_mean/cv_std
            other[key] = value
    parts = [p for p in _PARTS if any(p in row for row in names.values())]
    rows = [[n, *(_num(names[n].get(p, "-")) for p in parts)] for n in sorted(names)]
    rows += [[k, _num(v), *["-"] * (len(parts) - 1)] for k, v in sorted(other.items())]
    return ("table", (["metric", *(parts or ["value"])], rows))


def _facts(card: ModelCard) -> Block:
    v, extra = card.version, card.version.extra
    rows = [
        ["model", v.model],
        ["version", str(v.version)],
        ["aliases", ", ".join(v.aliases) or "-"],
        ["estimator", str(extra.get("estimator") or "-")],
        ["flavor", v.flavor],
        ["task", f"{extra.get('task') or '-'} (target {extra.get('target') or '-'})"],
        ["artifact", v.artifact],
        ["registered", f"{_when(v.created_ms)} by {v.created_by}"],
        ["run", v.run_id or "-"],
        ["git commit", v.code_version or card.lineage.get("code_version") or "unknown"],
    ]
    onnx = extra.get("onnx")
    if isinstance(onnx, dict):
        rows.append(["ONNX", f"{onnx.get('digest')} (opset {onnx.get('opset')})"])
    return ("table", (["fact", "value"], rows))


def _data(card: ModelCard) -> list[Block]:
    v = card.version
    blocks: list[Block] = [
        (
            "p",
            f"Trained on {v.dataset or 'a DataFrame (no dataset version)'}; split "
            f"{(v.split or {}).get('name', '-')}.",
        ),
    ]
    rows = [
        [d["ref"], str(d["rows"]), d["digest"], str(d["source"].get("path") or d["source"])]
        for d in card.lineage.get("datasets", [])
    ]
    if rows:
        blocks.append(("table", (["dataset version", "rows", "digest", "source"], rows)))
    inputs = v.signature.get("inputs", [])
    if inputs:
        rows = [[i["name"], str(i.get("dtype")), str(i.get("nullable"))] for i in inputs]
        blocks.append(("table", (["feature", "dtype", "nullable"], rows)))
    return blocks


def _gates(card: ModelCard) -> list[Block]:
    if not card.model.gates:
        return [("p", "No gates are declared for this model.")]
    if card.gates is None:
        return [("p", f"Gates are declared but {card.version.ref} has not been evaluated.")]
    verdict = "passed" if card.gates.passed else "FAILED"
    rows = [[o.name, o.kind, "yes" if o.passed else "NO", o.message] for o in card.gates.outcomes]
    return [
        ("p", f"Evaluated {_when(card.gates.ts_ms)} by {card.gates.actor}: {verdict}."),
        ("table", (["gate", "kind", "passed", "detail"], rows)),
    ]


def _approvals(card: ModelCard) -> list[Block]:
    need = "required" if card.model.requires_approval else "not required"
    rows = [[a.decision, a.actor, _when(a.ts_ms), a.comment] for a in card.approvals]
    blocks: list[Block] = [("p", f"Approval is {need} for promotion.")]
    if rows:
        blocks.append(("table", (["decision", "by", "when", "comment"], rows)))
    moves = [
        [
            _when(m.ts_ms),
            m.alias,
            str(m.from_version or "-"),
            str(m.to_version or "-"),
            m.actor,
            m.reason or "",
        ]
        for m in card.alias_moves
    ]
    if moves:
        headers = ["when", "alias", "from", "to", "by", "reason"]
        blocks.append(("table", (headers, moves)))
    return blocks


def _importance(card: ModelCard) -> list[Block]:
    blocks: list[Block] = []
    for found in card.importance:
        rows = [[name, f"{mean:.4g}", f"{std:.2g}"] for name, mean, std in found.values]
        blocks += [("p", found.detail), ("table", (["feature", "importance", "std"], rows))]
    return blocks + [("p", note) for note in card.notes]


def card_sections(card: ModelCard) -> list[tuple[str, list[Block]]]:
    """The card as titled sections of paragraphs, tables and preformatted text."""
    from loopml.registry._lineage import render_lineage

    name = card.model.name
    sections: list[tuple[str, list[Block]]] = [("Summary", [_facts(card)])]
    if card.version.description or card.model.description:
        sections[0][1].insert(0, ("p", card.version.description or card.model.description))
    for key, text in card.fields.items():
        hint = f"Not written yet: `loopml models describe {name} --set {key}=...`"
        sections.append((_title(key), [("p", text or hint)]))
    sections += [
        ("Data", _data(card)),
        ("Metrics", [_metrics_table(card.version.metrics)]),
        ("Gates", _gates(card)),
        ("Approvals and aliases", _approvals(card)),
        ("Feature importance", _importance(card)),
        ("Lineage", [("pre", render_lineage(card.lineage))]),
    ]
    libraries = [[k, str(v)] for k, v in sorted(card.version.libraries.items())]
    sections.append(("Libraries", [("table", (["library", "version"], libraries))]))
    return sections


def _md_text(text: str) -> str:
    """Angle brackets as entities: a Markdown viewer shows them and never runs them as HTML."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: ModelCard) -> str:
    lines = [f"# Model card: {card.version.ref}", "", f"Generated {_when(card.generated_ms)}.", ""]
    for title, blocks in card_sections(card):
        lines += [f"## {title}", ""]
        for kind, body in blocks:
            if kind == "table":
                headers, rows = body
                lines.append("| " + " | ".join(map(_md_cell, headers)) + " |")
                lines.append("|" + " --- |" * len(headers))
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
            elif kind == "pre":
                lines += ["```", body, "```"]
            else:
                lines.append(_md_text(body))
            lines.append("")
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;"
    "line-height:1.45}h1{border-bottom:2px solid #446}h2{margin-top:2rem;color:#335}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem "
    ".5rem;text-align:left;vertical-align:top}th{background:#eef}p{white-space:pre-wrap}"
    "pre{background:#f6f6f6;padding:.75rem;overflow-x:auto}"
)


def render_html(card: ModelCard) -> str:
    """One self-contained page: inline CSS, no scripts or external resources, all escaped."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Model card: {esc(card.version.ref)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Model card: {esc(card.version.ref)}</h1>",
        f"<p>Generated {esc(_when(card.generated_ms))}.</p>",
    ]
    for title, blocks in card_sections(card):
        out.append(f"<section><h2>{esc(title)}</h2>")
        for kind, body in blocks:
            if kind == "table":
                headers, rows = body
                out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows]
                out.append("</table>")
            elif kind == "pre":
                out.append(f"<pre>{esc(body)}</pre>")
            else:
                out.append(f"<p>{esc(body)}</p>")
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out)
