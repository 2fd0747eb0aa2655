"""Every mutating command, with every role, through the CLI with auth on.

A command is refused exactly when the role is below the least role that
``loopml.governance.PERMISSIONS`` names for its action; a refusal names the action
and changes nothing (no audit row). Commands that are allowed may still fail for
other reasons (a run that succeeded has nothing to resume): only the permission
decision is under test here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import PermissionDeniedError, load_settings
from loopml.governance import PERMISSIONS, Governance, Role, list_audit, resolve_identity
from loopml.store import open_store

pytestmark = pytest.mark.slow

PIPELINE = """
from loopml.pipelines import pipeline, step

@step
def one(x: int) -> int:
    return x + 1

@pipeline
def p(x: int = 1):
    one(x)
"""
ROLES = [Role.VIEWER, Role.CONTRIBUTOR, Role.APPROVER, Role.ADMIN]


@dataclass
class World:
    root: Path
    env: dict[str, str]
    tokens: dict[Role, str]
    run_id: str
    alerts: dict[Role, str]


def commands(world: World, role: Role) -> list[tuple[str, list[str]]]:
    """(action, argv) for every mutating command; names are per role so each can succeed."""
    r = role.value
    gates = world.root / "gates.toml"
    csv = world.root / "rows.csv"
    return [
        ("data.ingest", ["data", "ingest", str(csv), "--name", f"rows-{r}"]),
        ("pipeline.run", ["run", "pipe.py:p", "-p", "x=2"]),
        (
            "schedule.add",
            ["scheduler", "add", f"s-{r}", "--pipeline", "pipe.py:p", "--cron", "0 3 * * *"],
        ),
        ("schedule.enable", ["scheduler", "disable", "base"]),
        ("schedule.remove", ["scheduler", "remove", f"old-{r}"]),
        ("event.emit", ["events", "emit", "drift"]),
        ("model.register", ["models", "register", "m", "--run", world.run_id]),
        ("model.alias", ["models", "alias", "m@1", f"alias-{r}"]),
        ("model.update", ["models", "gates", "m", "-f", str(gates)]),
        ("model.evaluate_gates", ["models", "evaluate", "m@1"]),
        ("model.approve", ["models", "approve", "m@1", "-m", "fine"]),
        ("deployment.change", ["deploy", f"d-{r}", "--model", "m@1"]),
        ("deployment.change", ["deployments", "weight", f"d-{r}", "0.2"]),
        ("deployment.change", ["deployments", "switch", f"d-{r}"]),
        ("deployment.change", ["rollback", f"d-{r}"]),
        ("deployment.change", ["loop", "freeze", f"d-{r}", "--reason", "test"]),
        ("deployment.change", ["loop", "unfreeze", f"d-{r}"]),
        ("deployment.change", ["loop", "tick"]),
        ("deployment.change", ["loop", "run", "--interval", "0", "--max-ticks", "1"]),
        ("feedback.write", ["feedback", "import", str(world.root / "labels.csv")]),
        ("monitor.run", ["monitor", "run"]),
        ("monitor.run", ["monitor", "report", "nowhere"]),
        ("alert.ack", ["monitor", "alerts", "ack", world.alerts[role]]),
        ("model.reject", ["models", "reject", "m@1", "-m", "not fine"]),
        ("model.promote", ["models", "promote", "m@1"]),
        ("user.add", ["users", "add", f"new-{r}", "--role", "viewer"]),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import numpy as np
    import pandas as pd

    from loopml.data import DataCatalog
    from loopml.governance import Identity
    from loopml.pipelines import Scheduler
    from loopml.training import fit

    root = tmp_path_factory.mktemp("permissions")
    (root / "pipe.py").write_text(PIPELINE, encoding="utf-8")
    (root / "gates.toml").write_text(
        '[[gates]]\nkind = "metric"\nmetric = "test.accuracy"\nmin = 0.0\n', encoding="utf-8"
    )
    (root / "rows.csv").write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    (root / "labels.csv").write_text("prediction_id,label\nabc,1\n", encoding="utf-8")
    settings = load_settings(
        project_dir=root, environ={}, home=root / ".loopml", system_metrics=False, auth=True
    )
    store = open_store(settings.db_url)
    governance = Governance(settings, store=store)
    admin_token = governance.bootstrap("admin", actor=resolve_identity(settings, store))
    admin = Identity("admin", Role.ADMIN, "token")
    tokens = {Role.ADMIN: admin_token.secret}
    for role in ROLES[:-1]:
        governance.add_user(role.value, role, actor=admin)
        tokens[role] = governance.create_token(role.value, actor=admin).secret
    admin_settings = load_settings(
        project_dir=root,
        environ={},
        home=root / ".loopml",
        system_metrics=False,
        auth=True,
        token=tokens[Role.ADMIN],
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    frame["label"] = (frame["a"] > 0).astype(int)
    with DataCatalog(admin_settings) as catalog:
        ref = catalog.ingest(frame, name="train").version.ref
    from sklearn.linear_model import LogisticRegression

    run_id = fit(LogisticRegression(), ref, target="label", settings=admin_settings, cv=2).run_id
    with Scheduler(admin_settings) as scheduler:
        scheduler.add_schedule("base", str(root / "pipe.py") + ":p", "0 1 * * *")
        for role in ROLES:
            scheduler.add_schedule(f"old-{role.value}", str(root / "pipe.py") + ":p", "0 2 * * *")
    from loopml.registry import ModelRegistry

    with ModelRegistry(admin_settings) as registry:
        registry.register("m", run_id=run_id)
    from loopml.monitoring import AlertRule, Alerts
    from tests.monitoring.alert_helpers import sample

    rule = AlertRule(name="high", metric="loopml_drift_share", comparison=">", threshold=0.5)
    with Alerts(admin_settings) as alerts:
        opened = alerts.evaluate(
            [rule], [sample("loopml_drift_share", 1.0, deployment=r.value) for r in ROLES]
        )
    alert_ids = {Role(c.alert.deployment): c.alert.id for c in opened}
    store.close()
    env = {
        "LOOPML_HOME": str(root / ".loopml"),
        "LOOPML_AUTH": "true",
        "LOOPML_SYSTEM_METRICS": "false",
    }
    yield World(root, env, tokens, run_id, alert_ids)


def _audit_rows(world: World) -> int:
    store = open_store(f"sqlite:///{world.root / '.loopml' / 'loopml.db'}")
    try:
        with store.read() as conn:
            return len(list_audit(conn, limit=100_000))
    finally:
        store.close()


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_each_role_gets_exactly_its_permissions(
    world: World, role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.root)
    runner = CliRunner()
    env = {**world.env, "LOOPML_TOKEN": world.tokens[role]}
    wrong = []
    for action, argv in commands(world, role):
        allowed = role >= PERMISSIONS[action]
        before = _audit_rows(world)
        result = runner.invoke(app, argv, env=env)
        refused = isinstance(result.exception, PermissionDeniedError)
        if allowed and refused:
            wrong.append(f"{role.value} was refused {action}: {result.exception}")
        elif not allowed and not (refused and action in str(result.exception)):
            wrong.append(f"{role.value} ran {action}: exit {result.exit_code} {result.output!r}")
        elif not allowed and _audit_rows(world) != before:
            wrong.append(f"a refused {action} wrote an audit row")
    assert wrong == []


def test_the_table_covers_every_command_action(world: World) -> None:
    listed = {action for action, _ in commands(world, Role.ADMIN)}
    assert listed <= set(PERMISSIONS)


def test_a_viewer_cannot_start_a_tracking_run(world: World) -> None:
    from loopml.core import PermissionDeniedError
    from loopml.tracking import Client

    settings = load_settings(
        project_dir=world.root,
        environ={},
        home=world.root / ".loopml",
        system_metrics=False,
        auth=True,
        token=world.tokens[Role.VIEWER],
    )
    client = Client(settings)
    try:
        with pytest.raises(PermissionDeniedError, match="run.create"):
            client.start_run("x")
    finally:
        client.close()
