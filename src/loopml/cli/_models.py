"""``loopml models ...``, ``loopml lineage model`` and ``lineage prediction``: the registry
from the command line, and where a model or a prediction came from."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, err_console, format_ms, print_json, to_jsonable
from loopml.registry import (
    GateReport,
    ModelRegistry,
    load_card_file,
    load_gates_file,
    merge_card,
    model_lineage,
    parse_card_settings,
    render_lineage,
)

models_app = typer.Typer(
    help="Models: register, alias, gate, approve, promote, document.", no_args_is_help=True
)
lineage_app = typer.Typer(
    help="Lineage: where a model or a prediction came from.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(lineage_app, name="lineage")

if TYPE_CHECKING:
    from loopml.serving import PredictionLineage

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Ref = Annotated[str, typer.Argument(help="NAME@VERSION, NAME@ALIAS or NAME (newest).")]
Reason = Annotated[str | None, typer.Option(help="Why; kept in the audit log.")]


def _registry(ctx: typer.Context) -> ModelRegistry:
    return ModelRegistry(settings_from(ctx), create_store=False)


def _print_gates(report: GateReport) -> None:
    table = Table("gate", "kind", "passed", "detail", title=f"gates of {report.version}")
    for outcome in report.outcomes:
        table.add_row(
            outcome.name, outcome.kind, "yes" if outcome.passed else "NO", outcome.message
        )
    console.print(table)


@models_app.command("list")
def models_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Registered models with their newest version and aliases."""
    with _registry(ctx) as registry:
        found = registry.models()
    if json_:
        print_json([{**to_jsonable(m), "latest_version": n} for m, n in found])
        return
    table = Table("model", "latest", "aliases", "approval", "gates", title="models")
    for model, latest in found:
        aliases = ", ".join(f"{a}=@{v}" for a, v in sorted(model.aliases.items())) or "-"
        table.add_row(
            model.name,
            str(latest or "-"),
            aliases,
            "required" if model.requires_approval else "-",
            str(len(model.gates)),
        )
    console.print(table)


@models_app.command("show")
def models_show(ctx: typer.Context, ref: Ref, json_: JsonFlag = False) -> None:
    """A version: artifact, signature, metrics, data, gates, approvals; or a model's versions."""
    with _registry(ctx) as registry:
        if "@" not in ref:
            versions = registry.versions(ref)
            if json_:
                print_json({"model": to_jsonable(registry.get_model(ref)), "versions": versions})
                return
            table = Table("version", "aliases", "dataset", "run", "created", "by", title=ref)
            for v in versions:
                table.add_row(
                    str(v.version),
                    ", ".join(v.aliases) or "-",
                    v.dataset or "-",
                    (v.run_id or "-")[:12],
                    format_ms(v.created_ms),
                    v.created_by,
                )
            console.print(table)
            return
        version = registry.get(ref)
        gates = registry.gate_report(ref)
        decisions = registry.approvals(ref)
        blockers = registry.promotion_blockers(ref)
    if json_:
        print_json(
            {
                "version": version,
                "gates": gates,
                "approvals": decisions,
                "promotion_blockers": blockers,
            }
        )
        return
    console.print(f"[bold]{version.ref}[/bold]  aliases: {', '.join(version.aliases) or '-'}")
    console.print(f"flavor {version.flavor}; artifact {version.artifact}", markup=False)
    console.print(
        f"run {version.run_id}; pipeline run {version.pipeline_run_id or '-'}; "
        f"dataset {version.dataset or '-'}; split {version.split or '-'}",
        markup=False,
    )
    console.print(
        f"code {version.code_version or '-'}; libraries {version.libraries}", markup=False
    )
    metrics = (
        ", ".join(
            f"{k}={'nan' if v is None else format(v, '.4g')}"
            for k, v in sorted(version.metrics.items())
        )
        or "-"
    )
    console.print(f"metrics: {metrics}", markup=False)
    if gates is not None:
        _print_gates(gates)
    for decision in decisions:
        console.print(
            f"{decision.decision} by {decision.actor} at {format_ms(decision.ts_ms)}: "
            f"{decision.comment}",
            markup=False,
        )
    console.print(
        "promotable" if not blockers else "not promotable: " + "; ".join(blockers), markup=False
    )


@models_app.command("register")
def models_register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (created on first use).")],
    run_id: Annotated[str, typer.Option("--run", help="The tracking run that logged the model.")],
    artifact_path: Annotated[str, typer.Option(help="Where the run logged it.")] = "model",
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    json_: JsonFlag = False,
) -> None:
    """Register the model a run logged as a new version."""
    with _registry(ctx) as registry:
        version = registry.register(
            name, run_id=run_id, artifact_path=artifact_path, description=description
        )
    if json_:
        print_json(version)
        return
    console.print(
        f"registered {version.ref} from run {version.run_id} ({version.artifact[:19]}...)",
        markup=False,
    )


@models_app.command("gates")
def models_gates(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="TOML ([[gates]]) or YAML (gates:).")],
    approval: Annotated[
        bool | None,
        typer.Option("--require-approval/--no-approval", help="Whether promotion needs approval."),
    ] = None,
    reason: Reason = None,
) -> None:
    """Declare a model's gates (and whether promotion needs a human approval)."""
    gates = load_gates_file(file)
    with _registry(ctx) as registry:
        model = registry.update_model(name, gates=gates, requires_approval=approval, reason=reason)
    console.print(
        f"{model.name}: {len(model.gates)} gates; approval "
        f"{'required' if model.requires_approval else 'not required'}",
        markup=False,
    )


@models_app.command("evaluate")
def models_evaluate(ctx: typer.Context, ref: Ref, json_: JsonFlag = False) -> None:
    """Evaluate a version's gates and store the result; exit 1 when a gate fails."""
    with _registry(ctx) as registry:
        report = registry.evaluate_gates(ref)
    if json_:
        print_json(report)
    else:
        _print_gates(report)
    if not report.passed:
        names = ", ".join(o.name for o in report.failed)
        err_console.print(f"error: {report.version} failed gate(s): {names}", markup=False)
        raise typer.Exit(1)


@models_app.command("promote")
def models_promote(ctx: typer.Context, ref: Ref, reason: Reason = None) -> None:
    """Make a version champion: every gate passed and approved where required."""
    with _registry(ctx) as registry:
        version = registry.promote(ref, reason=reason)
    console.print(f"{version.ref} is now champion", markup=False)


@models_app.command("alias")
def models_alias(
    ctx: typer.Context,
    ref: Ref,
    alias: Annotated[str, typer.Argument(help="e.g. challenger, staging, any name.")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias.")] = False,
    reason: Reason = None,
) -> None:
    """Point an alias at a version (champion goes through promote's checks)."""
    with _registry(ctx) as registry:
        if remove:
            registry.remove_alias(ref.partition("@")[0], alias, reason=reason)
            console.print(f"removed {alias} from {ref.partition('@')[0]}", markup=False)
            return
        version = registry.set_alias(ref, alias, reason=reason)
    console.print(f"{version.model}@{alias} -> {version.version}", markup=False)


def _decide(ctx: typer.Context, ref: str, comment: str, approve: bool) -> None:
    with _registry(ctx) as registry:
        decision = (registry.approve if approve else registry.reject)(ref, comment)
    console.print(f"{ref}: {decision.decision} by {decision.actor}", markup=False)


@models_app.command("approve")
def models_approve(
    ctx: typer.Context,
    ref: Ref,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (required).")],
) -> None:
    """Approve a version for promotion (approver role)."""
    _decide(ctx, ref, comment, approve=True)


@models_app.command("reject")
def models_reject(
    ctx: typer.Context,
    ref: Ref,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (required).")],
) -> None:
    """Reject a version: it cannot be promoted until approved again."""
    _decide(ctx, ref, comment, approve=False)


@models_app.command("history")
def models_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Every alias move: from which version to which, who, when, why."""
    with _registry(ctx) as registry:
        moves = registry.alias_history(name, alias)
    if json_:
        print_json(moves)
        return
    table = Table("when", "alias", "from", "to", "by", "reason", title=f"alias moves of {name}")
    for m in moves:
        table.add_row(
            format_ms(m.ts_ms),
            m.alias,
            str(m.from_version or "-"),
            str(m.to_version or "-"),
            m.actor,
            m.reason or "",
        )
    console.print(table)


@models_app.command("describe")
def models_describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Card field KEY=VALUE (purpose, intended_use, limitations, any key); "
            "an empty VALUE removes it. Repeatable.",
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", "-f", help="Card fields from TOML or YAML (top level or [card])."
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="The model's one-line description.")
    ] = None,
    reason: Reason = None,
    json_: JsonFlag = False,
) -> None:
    """Edit a model's card fields (merged into what is there); without options, show them."""
    updates = load_card_file(from_file) if from_file is not None else {}
    updates |= parse_card_settings(set_ or [])
    with _registry(ctx) as registry:
        model = registry.get_model(name)
        if updates or description is not None:
            card = merge_card(model.card, updates) if updates else None
            model = registry.update_model(name, card=card, description=description, reason=reason)
    if json_:
        print_json({"name": model.name, "description": model.description, "card": model.card})
        return
    console.print(f"{model.name}: {model.description or '(no description)'}", markup=False)
    for key, text in model.card.items():
        console.print(f"[bold]{key}[/bold]")
        console.print(text, markup=False)


@models_app.command("card")
def models_card(
    ctx: typer.Context,
    ref: Ref,
    format_: Annotated[str, typer.Option("--format", help="markdown or html.")] = "markdown",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    no_importance: Annotated[
        bool, typer.Option("--no-importance", help="Skip feature importance (faster).")
    ] = False,
) -> None:
    """A version's model card: fields, data, metrics, gates, approvals, importance, lineage."""
    with _registry(ctx) as registry:
        text = registry.card(ref, format_, importance=not no_importance)
    if output is None:
        sys.stdout.write(text + "\n")
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(f"wrote the {format_} card of {ref} to {output}", markup=False)


@models_app.command("export-onnx")
def models_export_onnx(
    ctx: typer.Context,
    ref: Ref,
    sample_rows: Annotated[int, typer.Option(help="Held-out rows to check parity on.")] = 200,
    tolerance: Annotated[float, typer.Option(help="Largest difference allowed.")] = 1e-5,
    json_: JsonFlag = False,
) -> None:
    """Convert a scikit-learn version to ONNX, check parity, record it on the version."""
    with _registry(ctx) as registry:
        export = registry.export_onnx(ref, sample_rows=sample_rows, tolerance=tolerance)
    if json_:
        print_json(export)
        return
    parity = export.parity
    inputs = ", ".join(f"{i['name']}: {i['type']}[{len(i['columns'])}]" for i in export.inputs)
    console.print(
        f"exported {export.ref} to ONNX: {export.digest[:19]}... ({export.size} bytes, "
        f"opset {export.opset})\ninputs {inputs}; outputs {', '.join(export.outputs)}\n"
        f"parity on {parity['rows']} {parity['sample']}: {parity['rule']}; largest difference "
        f"{parity.get('max_abs_diff', 0.0):.3g} (tolerance {parity['tolerance']:g})",
        markup=False,
        highlight=False,
    )


@lineage_app.command("model")
def lineage_model(ctx: typer.Context, ref: Ref, json_: JsonFlag = False) -> None:
    """The chain: model version -> run -> pipeline run -> dataset versions -> sources."""
    with _registry(ctx) as registry:
        version = registry.get(ref)
        chain = model_lineage(registry.settings, version)
    if json_:
        print_json(chain)
        return
    console.print(render_lineage(chain), markup=False, highlight=False)


SHOWN_PARAMS = 6


def _params_summary(params: dict[str, str]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items())[:SHOWN_PARAMS])
    more = len(params) - SHOWN_PARAMS
    return (shown or "-") + (f" (+{more} more)" if more > 0 else "")


def _prediction_tree(lineage: PredictionLineage) -> Tree:
    """prediction -> version -> run -> (pipeline run, datasets, commit), as a Rich tree."""
    record = lineage.prediction
    revision = lineage.deployment_revision
    head = (
        f"prediction {record.prediction_id} at {format_ms(record.ts_ms)} on "
        f"{record.deployment} (revision {revision if revision is not None else 'unknown'}), "
        f"{record.latency_ms:.1f} ms"
    )
    if record.fallback:
        head += f"; fallback, answered by {lineage.answered_by or 'the fallback'}"
    if record.shadow:
        head += "; shadow (not returned to the caller)"
    tree = Tree(Text(head))
    tree.add(Text(f"inputs {json.dumps(record.inputs)} -> output {json.dumps(record.output)}"))
    model = lineage.model
    then = ", ".join(model.aliases_then) or "-"
    now = ", ".join(model.aliases_now) or "-"
    version = tree.add(
        Text(
            f"model version {model.ref} ({model.flavor}, {model.artifact}); "
            f"aliases then: {then}; now: {now}"
        )
    )
    run = lineage.run
    parent = version
    if run is None:
        version.add(Text("no tracking run recorded"))
    else:
        parent = version.add(
            Text(f"run {run.id} {run.name} in experiment {run.experiment or '?'} ({run.status})")
        )
        parent.add(Text(f"params: {_params_summary(run.params)}"))
    if lineage.pipeline_run:
        pipe = lineage.pipeline_run
        parent.add(Text(f"pipeline run {pipe['id']} of {pipe['pipeline']} ({pipe['status']})"))
    for data in lineage.datasets:
        split = f", split {data.split['name']}" if data.split else ""
        rows = f"{data.rows} rows, " if data.rows is not None else ""
        parent.add(Text(f"dataset {data.ref} ({rows}{data.digest}){split}"))
    if not lineage.datasets:
        parent.add(Text("no dataset version recorded (trained on an in-memory frame)"))
    commit = f"git commit {lineage.code_version or 'unknown'}"
    if run is not None and run.git_branch:
        commit += f" on {run.git_branch}"
    if run is not None and run.git_dirty:
        commit += f" with uncommitted changes ({run.diff_digest or 'digest unknown'})"
    parent.add(Text(commit))
    return tree


@lineage_app.command("prediction")
def lineage_prediction(
    ctx: typer.Context,
    prediction_id: Annotated[str, typer.Argument(help="The prediction id the server returned.")],
    json_: JsonFlag = False,
) -> None:
    """The chain: prediction -> model version -> run -> dataset versions -> git commit."""
    from loopml.serving import trace_prediction

    lineage = trace_prediction(settings_from(ctx), prediction_id)
    if json_:
        print_json(lineage.to_dict())
        return
    console.print(_prediction_tree(lineage), highlight=False)
