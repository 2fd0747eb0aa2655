"""Draw a pipeline's DAG: a text tree for terminals, DOT and Mermaid for docs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.pipelines._pipeline import Node, Pipeline
    from loopml.pipelines._records import PipelineRunRecord, StepRunRecord

__all__ = ["render_dot", "render_mermaid", "render_run_tree", "render_tree"]


def _sources(node: Node) -> list[str]:
    """What feeds a node: upstream nodes, then parameters and datasets."""
    fed = list(node.upstream)
    for binding in node.bindings.values():
        if binding.kind in ("param", "dataset"):
            fed.append(binding.describe())
    return fed


def render_tree(pipeline: Pipeline, statuses: Mapping[str, str] | None = None) -> str:
    """One line per step in run order, with what it reads and, if given, its status."""
    nodes = list(pipeline.nodes.values())
    width = max(len(n.name) for n in nodes)
    lines = [f"pipeline {pipeline.name} ({len(nodes)} steps)"]
    for index, node in enumerate(nodes):
        branch = "└──" if index == len(nodes) - 1 else "├──"
        fed = _sources(node)
        text = f"{branch} {node.name.ljust(width)}"
        if statuses is not None:
            text += f"  {statuses.get(node.name, '')}"
        if fed:
            text += f"  <- {', '.join(fed)}"
        lines.append(text.rstrip())
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(pipeline: Pipeline) -> str:
    """Graphviz DOT: steps as boxes, parameters and datasets as notes."""
    lines = [f"digraph {_quote(pipeline.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    extras: set[str] = set()
    for node in pipeline.nodes.values():
        lines.append(f"  {_quote(node.name)};")
        for up in node.upstream:
            lines.append(f"  {_quote(up)} -> {_quote(node.name)};")
        for binding in node.bindings.values():
            if binding.kind in ("param", "dataset"):
                label = binding.describe()
                if label not in extras:
                    extras.add(label)
                    lines.append(f"  {_quote(label)} [shape=note];")
                lines.append(f"  {_quote(label)} -> {_quote(node.name)};")
    lines.append("}")
    return "\n".join(lines)


def render_mermaid(pipeline: Pipeline) -> str:
    """A Mermaid flowchart, for Markdown docs."""
    ids = {name: f"s{i}" for i, name in enumerate(pipeline.nodes)}
    lines = ["flowchart LR"]
    extra_ids: dict[str, str] = {}
    for name, node in pipeline.nodes.items():
        lines.append(f'  {ids[name]}["{name}"]')
        for up in node.upstream:
            lines.append(f"  {ids[up]} --> {ids[name]}")
        for binding in node.bindings.values():
            if binding.kind in ("param", "dataset"):
                label = binding.describe()
                if label not in extra_ids:
                    extra_ids[label] = f"x{len(extra_ids)}"
                    lines.append(f'  {extra_ids[label]}[/"{label}"/]')
                lines.append(f"  {extra_ids[label]} -.-> {ids[name]}")
    return "\n".join(lines)


def _source_name(described: str) -> str:
    """``"load.output"`` -> ``"load"``; parameters and datasets stay as they are."""
    if described.startswith(("param:", "dataset:")):
        return described
    return described.rsplit(".", 1)[0]


def _step_state(step: StepRunRecord) -> str:
    text = step.status
    if step.duration_ms is not None and step.status != "cached":
        text += f" {step.duration_ms / 1000:.2f}s"
    if step.attempts > 1:
        text += f" ({step.attempts} attempts)"
    if step.cached_from:
        text += f" (from step run {step.cached_from[:8]})"
    return text


def render_run_tree(run: PipelineRunRecord) -> str:
    """A recorded run as a tree with each step's status, cache hit and duration.

    Drawn from the records alone, so it needs none of the pipeline's code.
    """
    if not run.steps:
        return f"pipeline {run.pipeline} run {run.id} (no steps)"
    width = max(len(s.name) for s in run.steps)
    states = {s.name: _step_state(s) for s in run.steps}
    state_width = max(len(v) for v in states.values())
    lines = [f"pipeline {run.pipeline} run {run.id[:12]}: {run.status}"]
    for index, step in enumerate(run.steps):
        branch = "└──" if index == len(run.steps) - 1 else "├──"
        fed = [_source_name(str(i.get("from", ""))) for i in step.inputs.values()]
        fed = [f for f in fed if f and f != "const"]
        text = f"{branch} {step.name.ljust(width)}  {states[step.name].ljust(state_width)}"
        if fed:
            text += f"  <- {', '.join(dict.fromkeys(fed))}"
        lines.append(text.rstrip())
        if step.error and step.status == "failed":
            lines.append(f"{'   ' if index == len(run.steps) - 1 else '│  '}   error: {step.error}")
    return "\n".join(lines)
