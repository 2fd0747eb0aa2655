"""``loopml users ...`` and ``loopml audit ...`` as a user runs them, auth off and on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

import loopml.cli._governance  # noqa: F401 - registers the commands
from loopml.cli._app import app
from loopml.core import LoopmlError, Settings
from loopml.store import open_store

runner = CliRunner()


class Cli:
    """Runs loopml on one store, with auth off unless a token (or ``auth=True``) is given."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = ["--home", str(settings.home), "--db-url", settings.db_url]

    def __call__(self, *args: str, token: str | None = None, auth: bool = False) -> Result:
        env = {
            "LOOPML_AUTH": "true" if auth or token else "false",
            "LOOPML_TOKEN": token,
            "COLUMNS": "200",
        }
        return runner.invoke(app, [*self.base, *args], env=env)

    def ok(self, *args: str, token: str | None = None, auth: bool = False) -> Result:
        result = self(*args, token=token, auth=auth)
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    def refused(self, *args: str, token: str | None = None, auth: bool = False) -> str:
        """The one-line message `loopml` prints for a LoopmlError (main() exits 1)."""
        result = self(*args, token=token, auth=auth)
        assert isinstance(result.exception, LoopmlError), (result.output, result.exception)
        return str(result.exception)

    def sql(self, statement: str) -> None:
        store = open_store(self.settings.db_url)
        with store.engine.begin() as conn:
            conn.execute(sa.text(statement))
        store.close()


@pytest.fixture
def cli(settings: Settings) -> Cli:
    return Cli(settings)


def test_embedded_mode_users_tokens_and_audit(cli: Cli) -> None:
    assert "added user alice (admin)" in cli.ok("users", "add", "alice", "--role", "admin").output
    cli.ok("users", "add", "bob", "--role", "viewer", "--reason", "new hire")
    assert "bob is now contributor" in cli.ok("users", "role", "bob", "contributor").output
    users = json.loads(cli.ok("users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in users] == [
        ("alice", "admin", False),
        ("bob", "contributor", False),
    ]
    assert "bob" in cli.ok("users", "list").stdout

    made = cli.ok("users", "token", "bob", "--name", "ci", "--expires-days", "30")
    secret = made.stdout.strip()
    assert secret.startswith("lml_") and "cannot be shown again" in made.stderr
    tokens = json.loads(cli.ok("users", "tokens", "bob", "--json").stdout)
    assert [(t["name"], t["state"]) for t in tokens] == [("ci", "active")]
    assert secret not in cli.ok("users", "tokens", "bob").stdout
    assert "revoked token" in cli.ok("users", "revoke-token", tokens[0]["id"]).stdout
    assert json.loads(cli.ok("users", "tokens", "bob", "--json").stdout)[0]["state"] == "revoked"
    cli.ok("users", "disable", "bob")
    cli.ok("users", "enable", "bob")

    rows = json.loads(cli.ok("audit", "list", "--json", "--limit", "100").stdout)
    assert [r["action"] for r in rows][::-1] == [
        "user.add", "user.add", "user.role", "token.create", "token.revoke",
        "user.disable", "user.enable",
    ]  # fmt: skip
    assert rows[-2]["reason"] == "new hire"
    assert secret not in json.dumps(rows)
    only = json.loads(cli.ok("audit", "list", "--json", "--action", "token.*").stdout)
    assert {r["action"] for r in only} == {"token.create", "token.revoke"}
    assert "user.role" in cli.ok("audit", "list").stdout

    verified = cli.ok("audit", "verify")
    assert "audit log verified: 7 rows, chain intact" in verified.stdout
    head = verified.stdout.split("head: ")[1].strip()
    assert cli.ok("audit", "verify", "--anchor", head).exit_code == 0


def test_verify_catches_an_edited_row(cli: Cli) -> None:
    for name in ("a", "b", "c"):
        cli.ok("users", "add", name, "--role", "admin")
    cli.sql('UPDATE audit_log SET after = \'{"role":"viewer"}\' WHERE seq = 2')
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "row 2 was edited" in result.stderr and "1 rows before it are intact" in result.stderr
    assert "bad" in cli.refused("audit", "verify", "--anchor", "bad")


def test_verify_catches_a_deleted_row_and_truncation(cli: Cli) -> None:
    for name in ("a", "b", "c"):
        cli.ok("users", "add", name, "--role", "admin")
    head = cli.ok("audit", "verify").stdout.split("head: ")[1].strip()
    cli.sql("DELETE FROM audit_log WHERE seq = 3")
    assert cli.ok("audit", "verify").stdout.startswith("audit log verified: 2 rows")
    result = cli("audit", "verify", "--anchor", head)
    assert result.exit_code == 1 and "deleted from the end" in result.stderr
    cli.sql("DELETE FROM audit_log WHERE seq = 1")
    assert "row 1 is missing: deleted" in cli("audit", "verify").stderr


def test_auth_on_bootstrap_tokens_and_refusals(cli: Cli) -> None:
    # no users yet: the local user may create the first admin, and only that
    assert "first admin" in cli.refused("users", "list", auth=True)
    assert "--role admin" in cli.refused("users", "add", "root", "--role", "viewer", auth=True)
    made = cli.ok("users", "add", "root", "--role", "admin", auth=True)
    root = made.stdout.strip()
    assert root.startswith("lml_") and "added user root" in made.stderr
    assert "LOOPML_TOKEN is not set" in cli.refused("users", "list", auth=True)

    cli.ok("users", "add", "vic", "--role", "viewer", token=root)
    cli.ok("users", "add", "cat", "--role", "contributor", "--token", token=root)
    vic = cli.ok("users", "token", "vic", token=root).stdout.strip()
    assert "vic" in cli.ok("users", "list", token=vic).stdout  # viewers may read
    cli.ok("audit", "verify", token=vic)
    message = cli.refused("users", "add", "eve", "--role", "admin", token=vic)
    assert message == "vic (role viewer) may not user.add: it needs role admin or higher"
    assert "may not token.create.self" in cli.refused("users", "token", "vic", token=vic)

    cli.ok("users", "disable", "vic", token=root)
    assert "user vic is disabled" in cli.refused("users", "list", token=vic)
    forged = "lml_" + "A" * 43
    refused = cli.refused("users", "list", token=forged)
    assert "not a known API token" in refused and forged not in refused
    assert cli.ok("audit", "verify", token=root).stdout.startswith("audit log verified: 7 rows")
    actors = {r["actor"] for r in json.loads(cli.ok("audit", "list", "--json", token=root).stdout)}
    assert "root" in actors


# Every mutating users command, run against another user; the least role that may run it.
COMMANDS = {
    "add": (["users", "add", "newcomer", "--role", "viewer"], "admin"),
    "role": (["users", "role", "target", "approver"], "admin"),
    "disable": (["users", "disable", "target"], "admin"),
    "enable": (["users", "enable", "frozen"], "admin"),
    "token": (["users", "token", "other"], "admin"),
    "revoke-token": (["users", "revoke-token", "{target_token}"], "admin"),
}
RANK = {"viewer": 0, "contributor": 1, "approver": 2, "admin": 3}


def test_every_mutating_command_with_every_role(cli: Cli) -> None:
    cli.ok("users", "add", "root", "--role", "admin")
    tokens = {}
    for role in RANK:
        cli.ok("users", "add", f"as-{role}", "--role", role)
        tokens[role] = cli.ok("users", "token", f"as-{role}").stdout.strip()
    cli.ok("users", "add", "target", "--role", "contributor")
    cli.ok("users", "add", "frozen", "--role", "viewer")
    cli.ok("users", "add", "other", "--role", "viewer")
    cli.ok("users", "disable", "frozen")
    cli.ok("users", "token", "target")
    target_token = json.loads(cli.ok("users", "tokens", "target", "--json").stdout)[0]["id"]
    wrong = []
    for role in RANK:  # admin last
        for command, (args, least) in COMMANDS.items():
            argv = [a.replace("{target_token}", target_token) for a in args]
            result = cli(*argv, token=tokens[role])
            allowed = RANK[role] >= RANK[least]
            if allowed and result.exit_code != 0:
                wrong.append(f"{role} was refused {command}: {result.exception}")
            if not allowed and "may not" not in str(result.exception):
                wrong.append(f"{role} ran {command}: {result.output}")
    assert not wrong
    assert cli.ok("audit", "verify").exit_code == 0


def test_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    code = "import loopml.cli._governance; from loopml.cli import main; main()"
    forged = "lml_" + "B" * 43
    result = subprocess.run(
        [sys.executable, "-c", code, *cli.base, "users", "list"],
        env={"LOOPML_AUTH": "true", "LOOPML_TOKEN": forged, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: LOOPML_TOKEN is not a known API token")
    assert result.stderr.count("\n") == 1 and forged not in result.stderr + result.stdout
