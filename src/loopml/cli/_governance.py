"""``loopml users ...`` and ``loopml audit ...``: identities, API tokens and the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, format_ms, print_json, to_jsonable
from loopml.core import ValidationError
from loopml.governance import Governance, Identity, IssuedToken, Role, TokenInfo

users_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log: list and verify.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Reason = Annotated[str | None, typer.Option(help="Why, kept in the audit log.")]


@contextmanager
def _session(ctx: typer.Context) -> Iterator[tuple[Governance, Identity]]:
    gov = Governance(settings_from(ctx))
    try:
        yield gov, gov.identity()
    finally:
        gov.close()


def _token_row(token: TokenInfo) -> dict[str, Any]:
    state = "revoked" if token.revoked_ms is not None else "active"
    return {**to_jsonable(token), "state": state}


def _print_secret(issued: IssuedToken) -> None:
    info = issued.info
    expiry = "never" if info.expires_ms is None else format_ms(info.expires_ms)
    typer.echo(issued.secret)
    typer.echo(
        f"token {info.id} for {info.user} (expires: {expiry}). Store it now: it cannot be "
        "shown again. Use it as LOOPML_TOKEN.",
        err=True,
    )


@users_app.command("add")
def add_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="viewer, contributor, approver or admin.")],
    token: Annotated[
        bool, typer.Option("--token", help="Also create an API token and print it once.")
    ] = False,
    reason: Reason = None,
) -> None:
    """Create a user. With auth on and no users yet: the first admin, and their token."""
    with _session(ctx) as (gov, actor):
        if actor.via == "bootstrap":
            if Role.parse(role) is not Role.ADMIN:
                raise ValidationError("the first user must be an admin: use --role admin")
            issued: IssuedToken | None = gov.bootstrap(name, actor=actor)
        else:
            gov.add_user(name, role, actor=actor, reason=reason)
            issued = gov.create_token(name, actor=actor) if token else None
    typer.echo(f"added user {name} ({Role.parse(role).value})", err=issued is not None)
    if issued is not None:
        _print_secret(issued)


@users_app.command("list")
def list_users(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List users and their roles."""
    with _session(ctx) as (gov, actor):
        users = gov.list_users(actor=actor)
    if json_out:
        print_json(users)
        return
    table = Table("name", "role", "state", "created", "by")
    for user in users:
        state = "disabled" if user.disabled else "enabled"
        table.add_row(
            user.name, user.role.value, state, format_ms(user.created_ms), user.created_by
        )
    console.print(table)


@users_app.command("role")
def set_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help="viewer, contributor, approver or admin.")],
    reason: Reason = None,
) -> None:
    """Change a user's role."""
    with _session(ctx) as (gov, actor):
        user = gov.set_role(name, role, actor=actor, reason=reason)
    console.print(f"{user.name} is now {user.role.value}")


@users_app.command("disable")
def disable_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    reason: Reason = None,
) -> None:
    """Disable a user: their tokens stop working."""
    with _session(ctx) as (gov, actor):
        gov.disable_user(name, actor=actor, reason=reason)
    console.print(f"disabled {name}")


@users_app.command("enable")
def enable_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    reason: Reason = None,
) -> None:
    """Enable a disabled user again."""
    with _session(ctx) as (gov, actor):
        gov.enable_user(name, actor=actor, reason=reason)
    console.print(f"enabled {name}")


@users_app.command("token")
def create_token(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Whose token.")],
    name: Annotated[str, typer.Option(help="A label to tell tokens apart.")] = "default",
    expires_days: Annotated[
        float | None, typer.Option(help="Days until it expires (default: never).")
    ] = None,
    reason: Reason = None,
) -> None:
    """Create an API token and print it once."""
    with _session(ctx) as (gov, actor):
        issued = gov.create_token(
            user, actor=actor, name=name, expires_days=expires_days, reason=reason
        )
    _print_secret(issued)


@users_app.command("tokens")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Whose tokens.")],
    json_out: JsonFlag = False,
) -> None:
    """List a user's tokens (ids, labels, state; never the secrets)."""
    with _session(ctx) as (gov, actor):
        tokens = gov.list_tokens(user, actor=actor)
    if json_out:
        print_json([_token_row(t) for t in tokens])
        return
    table = Table("id", "name", "prefix", "state", "created", "expires")
    for token in tokens:
        table.add_row(
            token.id,
            token.name,
            token.prefix + "…",
            _token_row(token)["state"],
            format_ms(token.created_ms),
            format_ms(token.expires_ms) if token.expires_ms is not None else "never",
        )
    console.print(table)


@users_app.command("revoke-token")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (see `loopml users tokens`).")],
    reason: Reason = None,
) -> None:
    """Revoke an API token."""
    with _session(ctx) as (gov, actor):
        token = gov.revoke_token(token_id, actor=actor, reason=reason)
    console.print(f"revoked token {token.id} of {token.user}")


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 50,
    actor_name: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, or a prefix ending in '*'.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Only targets starting with this.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show the newest audit rows."""
    with _session(ctx) as (gov, actor):
        entries = gov.audit(limit, actor=actor, by=actor_name, action=action, target_prefix=target)
    if json_out:
        print_json(entries)
        return
    table = Table()
    for column in ("seq", "when", "actor", "action"):
        table.add_column(column, no_wrap=True)
    for column in ("target", "change", "reason"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.seq), format_ms(e.ts_ms), e.actor, e.action, e.target,
            _change(e.before, e.after), e.reason or "",
        )  # fmt: skip
    console.print(table)


def _change(before: str | None, after: str | None) -> str:
    """A short summary of what changed: ``role: viewer -> admin``, or the new values."""
    old, new = (json.loads(x) if x else None for x in (before, after))
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        return ", ".join(f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}" for k in keys)
    if isinstance(new, dict) and old is None:
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(new.items()))
    return f"{before or '-'} -> {after or '-'}"


def _parse_anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValidationError(f"--anchor must be SEQ:HASH (a row number and 64 hex); got {text!r}")
    return int(seq), digest.lower()


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH recorded from an earlier verify; that row must be intact."),
    ] = None,
) -> None:
    """Check the audit chain; exit 1 naming the first edited, inserted or deleted row."""
    expected = _parse_anchor(anchor) if anchor else None
    with _session(ctx) as (gov, actor):
        report = gov.verify_audit(actor=actor, anchor=expected)
    if not report.ok:
        typer.echo(f"audit log BROKEN: {report.problem}", err=True)
        typer.echo(f"{report.rows} rows before it are intact", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log verified: {report.rows} rows, chain intact")
    typer.echo(f"head: {report.head_seq}:{report.head_hash}")
    typer.echo("record the head elsewhere and check it later with --anchor", err=True)
