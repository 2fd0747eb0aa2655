"""``loopml deploy``, ``loopml deployments ...`` and ``loopml rollback``: what is served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, format_ms, print_json
from loopml.core import ValidationError
from loopml.serving import Deployment, DeploymentRevision, Deployments, DeploymentSpec

deployments_app = typer.Typer(
    help="Deployments: what each endpoint serves, its revisions.", no_args_is_help=True
)
app.add_typer(deployments_app, name="deployments")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Name = Annotated[str, typer.Argument(help="Deployment name.")]
Reason = Annotated[str | None, typer.Option(help="Why; kept in the history and audit log.")]


def _service(ctx: typer.Context) -> Deployments:
    return Deployments(settings_from(ctx))


def _as_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "name": deployment.name,
        "strategy": deployment.strategy,
        "revision": deployment.revision,
        "updated_ms": deployment.updated_ms,
        "updated_by": deployment.updated_by,
        "spec": deployment.spec.to_dict(),
    }


def _revision_json(rev: DeploymentRevision) -> dict[str, Any]:
    return {
        "revision": rev.revision,
        "strategy": rev.strategy,
        "actor": rev.actor,
        "reason": rev.reason,
        "ts_ms": rev.ts_ms,
        "spec": rev.spec.to_dict(),
    }


def describe(spec: DeploymentSpec) -> str:
    """One line: who serves what."""
    if spec.strategy == "single":
        text = spec.routes[0].model
    elif spec.strategy == "ab":
        text = ", ".join(f"{a.model}={a.weight:g}" for a in spec.routes)
    elif spec.strategy == "canary":
        text = f"{spec.primary} + canary {spec.canary} at {spec.canary_weight:g}"
    elif spec.strategy == "shadow":
        text = f"{spec.primary}, shadow {spec.shadow}"
    else:
        text = f"blue {spec.blue}, green {spec.green}, live {spec.live}"
    if spec.sticky_key:
        text += f" (sticky by {spec.sticky_key})"
    return text


def _printed(deployment: Deployment, verb: str) -> None:
    console.print(
        f"{verb} {deployment.name} revision {deployment.revision}: "
        f"{deployment.strategy} {describe(deployment.spec)}",
        markup=False,
    )


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read deploy file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            document: Any = tomllib.loads(text)
        else:
            import yaml

            document = yaml.safe_load(text)
    except Exception as exc:
        raise ValidationError(f"deploy file {path} does not parse: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError(f"deploy file {path} must hold a table of deployment fields")
    return document


def _arm(text: str) -> dict[str, Any]:
    model, sep, weight = text.rpartition("=")
    if not sep:
        raise ValidationError(f"--model {text!r}: an ab arm is written NAME@VERSION=WEIGHT")
    try:
        return {"model": model, "weight": float(weight)}
    except ValueError:
        raise ValidationError(f"--model {text!r}: weight {weight!r} is not a number") from None


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    name: Name,
    strategy: Annotated[
        str, typer.Option(help="single | ab | canary | shadow | bluegreen.")
    ] = "single",
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="The model (NAME@VERSION or NAME@ALIAS, pinned now); for ab repeat as "
            "REF=WEIGHT (weights are fractions summing to 1); for canary and shadow the primary.",
        ),
    ] = None,
    sticky_key: Annotated[
        str | None, typer.Option(help="Request field that keeps a caller on one arm (ab, canary).")
    ] = None,
    canary: Annotated[str | None, typer.Option(help="Canary model (canary).")] = None,
    weight: Annotated[float | None, typer.Option(help="Canary's share in [0, 1].")] = None,
    shadow: Annotated[str | None, typer.Option(help="Shadow model (shadow).")] = None,
    blue: Annotated[str | None, typer.Option(help="Blue model (bluegreen).")] = None,
    green: Annotated[str | None, typer.Option(help="Green model (bluegreen).")] = None,
    live: Annotated[
        str | None, typer.Option(help="blue | green (bluegreen; default blue).")
    ] = None,
    fallback: Annotated[
        str | None, typer.Option(help="Version that answers when the model fails.")
    ] = None,
    fallback_constant: Annotated[
        str | None, typer.Option(help="JSON value returned when the model fails.")
    ] = None,
    timeout_ms: Annotated[
        int | None, typer.Option(help="Time limit of a model call (default 1000).")
    ] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Serve the ONNX exports.")] = False,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", "-f", help="TOML or YAML with the spec fields.")
    ] = None,
    reason: Reason = None,
    json_: JsonFlag = False,
) -> None:
    """Create or replace a deployment: a new revision, served within a second."""
    data: dict[str, Any]
    spec_options = [model, sticky_key, canary, weight, shadow, blue, green, live]
    if from_file is not None:
        if any(v not in (None, []) for v in spec_options) or strategy != "single":
            raise ValidationError("--from-file holds the spec: give no --strategy or model options")
        data = _load_file(from_file)
    else:
        models = model or []
        data = {"strategy": strategy}
        if strategy == "ab":
            data["routes"] = [_arm(m) for m in models]
        elif strategy in ("single", "canary", "shadow"):
            if len(models) != 1:
                raise ValidationError(f"{strategy} takes exactly one --model")
            key = "routes" if strategy == "single" else "primary"
            data[key] = [{"model": models[0], "weight": 1.0}] if key == "routes" else models[0]
        elif models:
            raise ValidationError("bluegreen takes --blue and --green, not --model")
        optional = {
            "sticky_key": sticky_key,
            "canary": canary,
            "canary_weight": weight,
            "shadow": shadow,
            "blue": blue,
            "green": green,
            "live": live or ("blue" if strategy == "bluegreen" else None),
        }
        data.update({k: v for k, v in optional.items() if v is not None})
    if fallback is not None and fallback_constant is not None:
        raise ValidationError("give --fallback or --fallback-constant, not both")
    if fallback is not None:
        data["fallback"] = {"kind": "version", "model": fallback}
    if fallback_constant is not None:
        try:
            value = orjson.loads(fallback_constant)
        except orjson.JSONDecodeError:
            raise ValidationError(
                f"--fallback-constant {fallback_constant!r} is not JSON"
            ) from None
        data["fallback"] = {"kind": "constant", "value": value}
    if timeout_ms is not None:
        data["timeout_ms"] = timeout_ms
    if onnx:
        data["onnx"] = True
    spec = DeploymentSpec.from_dict(data)
    with _service(ctx) as service:
        deployed = service.deploy(name, spec, reason=reason)
    if json_:
        print_json(_as_json(deployed))
    else:
        _printed(deployed, "deployed")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Name,
    to: Annotated[
        int | None, typer.Option("--to", help="Revision to serve again (default: the previous).")
    ] = None,
    reason: Reason = None,
    json_: JsonFlag = False,
) -> None:
    """Serve an earlier revision's spec again, as a new revision."""
    with _service(ctx) as service:
        done = service.rollback(name, to_revision=to, reason=reason)
    if json_:
        print_json(_as_json(done))
    else:
        _printed(done, "rolled back")


@deployments_app.command("list")
def deployments_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Every deployment with its strategy, models and revision."""
    with _service(ctx) as service:
        found = service.list()
    if json_:
        print_json([_as_json(d) for d in found])
        return
    table = Table("deployment", "strategy", "serves", "revision", "updated", "by")
    for d in found:
        table.add_row(
            d.name,
            d.strategy,
            describe(d.spec),
            str(d.revision),
            format_ms(d.updated_ms),
            d.updated_by,
        )
    console.print(table)


@deployments_app.command("show")
def deployments_show(ctx: typer.Context, name: Name, json_: JsonFlag = False) -> None:
    """A deployment's spec and every revision it has had."""
    with _service(ctx) as service:
        found = service.get(name)
        history = service.history(name)
    if json_:
        print_json({"deployment": _as_json(found), "history": [_revision_json(h) for h in history]})
        return
    console.print(
        f"[bold]{found.name}[/bold] revision {found.revision} "
        f"({found.strategy}), by {found.updated_by} at {format_ms(found.updated_ms)}"
    )
    console.print(
        orjson.dumps(found.spec.to_dict(), option=orjson.OPT_INDENT_2).decode(), markup=False
    )
    table = Table("revision", "strategy", "serves", "when", "by", "reason", title="history")
    for h in history:
        table.add_row(
            str(h.revision),
            h.strategy,
            describe(h.spec),
            format_ms(h.ts_ms),
            h.actor,
            h.reason or "-",
        )
    console.print(table)


@deployments_app.command("weight")
def deployments_weight(
    ctx: typer.Context,
    name: Name,
    weight: Annotated[float, typer.Argument(help="The canary's new share in [0, 1].")],
    reason: Reason = None,
    json_: JsonFlag = False,
) -> None:
    """Step a canary deployment's weight."""
    with _service(ctx) as service:
        done = service.set_canary_weight(name, weight, reason=reason)
    if json_:
        print_json(_as_json(done))
    else:
        _printed(done, "stepped")


@deployments_app.command("switch")
def deployments_switch(
    ctx: typer.Context, name: Name, reason: Reason = None, json_: JsonFlag = False
) -> None:
    """Flip a blue/green deployment's live side."""
    with _service(ctx) as service:
        done = service.switch(name, reason=reason)
    if json_:
        print_json(_as_json(done))
    else:
        _printed(done, "switched")
