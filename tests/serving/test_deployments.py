"""Deployments as data: specs, pinning, revisions, rollback, authorization, routing."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.core import NotFoundError, PermissionDeniedError, Settings, ValidationError
from loopml.governance import Identity, Role, list_audit
from loopml.registry import ModelRegistry
from loopml.serving import (
    Deployments,
    DeploymentSpec,
    Fallback,
    Route,
    key_fraction,
    route,
)
from loopml.store import open_store


@pytest.fixture
def models(settings: Settings) -> Settings:
    """``churn@1`` and ``churn@2`` (champion), registered from one quick fit."""
    from sklearn.linear_model import LogisticRegression

    from loopml.data import DataCatalog
    from loopml.training import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = (x[:, 0] > 0).astype(int)
    with DataCatalog(settings) as catalog:
        ref = catalog.ingest(frame, name="toy").version.ref
    run = fit(LogisticRegression(), ref, target="label", settings=settings, cv=2)
    with ModelRegistry(settings) as registry:
        registry.register("churn", run_id=run.run_id)
        registry.register("churn", run_id=run.run_id)
        registry.set_alias("churn@2", "champion")
    return settings


def _audit(settings: Settings) -> list[str]:
    store = open_store(settings.db_url, create=False)
    try:
        with store.read() as conn:
            rows = list_audit(conn, 100, action="deployment.*")
    finally:
        store.close()
    return [f"{row.action} {row.target}" for row in reversed(rows)]


def test_each_strategy_deploys_with_pinned_refs(models: Settings) -> None:
    with Deployments(models) as deployments:
        single = deployments.deploy("churn-api", DeploymentSpec.single("churn@champion"))
        assert (single.revision, single.strategy) == (1, "single")
        assert single.spec.routes == (Route("churn@2", 1.0),)
        assert dict(single.spec.pinned) == {"churn@champion": "churn@2"}

        ab = deployments.deploy(
            "ab", DeploymentSpec.ab({"churn@1": 0.3, "churn": 0.7}, sticky_key="customer_id")
        )
        assert [r.model for r in ab.spec.routes] == ["churn@1", "churn@2"]
        assert ab.spec.sticky_key == "customer_id"

        canary = deployments.deploy(
            "canary",
            DeploymentSpec.canary_of(
                "churn@1", "churn@2", 0.1, fallback=Fallback("version", "churn@champion")
            ),
        )
        assert canary.spec.fallback == Fallback("version", "churn@2")
        shadow = deployments.deploy(
            "shadow",
            DeploymentSpec.shadow_of(
                "churn@1", "churn@2", fallback=Fallback("constant", value=0), timeout_ms=250
            ),
        )
        assert (shadow.spec.timeout_ms, shadow.spec.fallback) == (
            250,
            Fallback("constant", None, 0),
        )
        bluegreen = deployments.deploy("bg", DeploymentSpec.bluegreen("churn@1", "churn@2"))
        assert route(bluegreen.spec, None, random.Random(0)).primary == "churn@1"

        # what was stored reads back the same
        for found in [single, ab, canary, shadow, bluegreen]:
            assert deployments.get(found.name) == found
        assert [d.name for d in deployments.list()] == ["ab", "bg", "canary", "churn-api", "shadow"]

        # a later move of the alias does not change what is served
        with ModelRegistry(models) as registry:
            registry.set_alias("churn@1", "champion")
        assert deployments.get("churn-api").spec.routes[0].model == "churn@2"


def test_invalid_specs_name_the_field(models: Settings) -> None:
    with pytest.raises(ValidationError, match="routes: ab weights .* sum to 0.9"):
        DeploymentSpec.ab({"churn@1": 0.5, "churn@2": 0.4})
    with pytest.raises(ValidationError, match="canary_weight must be in"):
        DeploymentSpec.canary_of("churn@1", "churn@2", 1.5)
    with pytest.raises(ValidationError, match="live must be 'blue' or 'green'; got 'red'"):
        DeploymentSpec.bluegreen("churn@1", "churn@2", live="red")
    with pytest.raises(ValidationError, match="strategy must be one of"):
        DeploymentSpec("rainbow")
    with pytest.raises(ValidationError, match="sticky_key does not apply to a shadow"):
        DeploymentSpec.from_dict(
            {"strategy": "shadow", "primary": "a@1", "shadow": "a@2", "sticky_key": "k"}
        )
    with pytest.raises(ValidationError, match="unknown deployment field"):
        DeploymentSpec.from_dict({"strategy": "single", "model": "a@1", "weights": 1})
    with pytest.raises(ValidationError, match="timeout_ms"):
        DeploymentSpec.single("a@1", timeout_ms=0)
    with Deployments(models) as deployments:
        with pytest.raises(NotFoundError, match="no registered model 'nope'"):
            deployments.deploy("d", DeploymentSpec.single("nope@1"))
        with pytest.raises(NotFoundError):
            deployments.deploy("d", DeploymentSpec.single("churn@9"))
        with pytest.raises(ValidationError, match="onnx: churn@2 has no ONNX export"):
            deployments.deploy("d", DeploymentSpec.single("churn@2", onnx=True))
        with pytest.raises(ValidationError, match="deployment name"):
            deployments.deploy("bad name", DeploymentSpec.single("churn@2"))
        assert deployments.list() == []
        with pytest.raises(NotFoundError, match="no deployment 'd'"):
            deployments.get("d")


def test_revisions_rollback_weight_switch_and_audit(models: Settings) -> None:
    with Deployments(models) as deployments:
        first = deployments.deploy("api", DeploymentSpec.single("churn@1"), reason="launch")
        with pytest.raises(ValidationError, match="nothing to roll back to"):
            deployments.rollback("api")
        deployments.deploy("api", DeploymentSpec.canary_of("churn@1", "churn@2", 0.1))
        stepped = deployments.set_canary_weight("api", 0.5, reason="healthy")
        assert (stepped.revision, stepped.spec.canary_weight) == (3, 0.5)
        with pytest.raises(ValidationError, match="canary_weight must be in"):
            deployments.set_canary_weight("api", 1.5)
        with pytest.raises(ValidationError, match="not bluegreen"):
            deployments.switch("api")

        back = deployments.rollback("api", reason="bad canary")
        assert back.revision == 4 and back.spec == DeploymentSpec.canary_of(
            "churn@1", "churn@2", 0.1
        )
        again = deployments.rollback("api", to_revision=1)
        assert again.revision == 5 and again.spec == first.spec
        assert deployments.revision("api") == 5 == deployments.get("api").revision
        with pytest.raises(NotFoundError, match="no deployment 'gone'"):
            deployments.revision("gone")
        with pytest.raises(NotFoundError, match="no revision 9"):
            deployments.rollback("api", to_revision=9)
        with pytest.raises(ValidationError, match="at revision 5 already"):
            deployments.rollback("api", to_revision=5)
        with pytest.raises(NotFoundError, match="no deployment 'gone'"):
            deployments.rollback("gone")

        history = deployments.history("api")
        assert [(h.revision, h.strategy, h.reason) for h in history] == [
            (1, "single", "launch"),
            (2, "canary", None),
            (3, "canary", "healthy"),
            (4, "canary", "bad canary"),
            (5, "single", None),
        ]
        assert history[4].spec == history[0].spec

        deployments.deploy("bg", DeploymentSpec.bluegreen("churn@1", "churn@2"))
        assert deployments.switch("bg").spec.live == "green"
        with pytest.raises(ValidationError, match="not canary"):
            deployments.set_canary_weight("bg", 0.2)

    assert _audit(models) == [
        "deployment.deploy deployment:api",
        "deployment.deploy deployment:api",
        "deployment.weight deployment:api",
        "deployment.rollback deployment:api",
        "deployment.rollback deployment:api",
        "deployment.deploy deployment:bg",
        "deployment.switch deployment:bg",
    ]
    store = open_store(models.db_url, create=False)
    with store.read() as conn:
        entry = list_audit(conn, 1, action="deployment.weight")[0]
    store.close()
    assert json.loads(entry.before or "")["spec"]["canary_weight"] == 0.1
    assert json.loads(entry.after or "")["spec"]["canary_weight"] == 0.5
    assert entry.reason == "healthy"


def test_a_contributor_may_not_change_deployments(models: Settings) -> None:
    with Deployments(models) as admin:
        admin.deploy("api", DeploymentSpec.single("churn@1"))
    contributor = Identity("c", Role.CONTRIBUTOR, "token")
    with Deployments(models, identity=contributor) as deployments:
        with pytest.raises(PermissionDeniedError, match="deployment.change"):
            deployments.deploy("api", DeploymentSpec.single("churn@2"))
        with pytest.raises(PermissionDeniedError):
            deployments.rollback("api")
        with pytest.raises(PermissionDeniedError):
            deployments.switch("api")
        assert deployments.get("api").revision == 1  # reading is fine
    assert _audit(models) == ["deployment.deploy deployment:api"]
    approver = Identity("a", Role.APPROVER, "token")
    with Deployments(models, identity=approver) as deployments:
        assert deployments.deploy("api", DeploymentSpec.single("churn@2")).updated_by == "a"


# -- routing: pure, no store -----------------------------------------------------------


def test_ab_split_follows_the_weights_and_keys_stick() -> None:
    spec = DeploymentSpec.ab({"m@1": 0.2, "m@2": 0.5, "m@3": 0.3}, sticky_key="customer_id")
    rng = random.Random(7)
    by_key = Counter(route(spec, f"customer-{i}", rng).primary for i in range(10_000))
    by_rng = Counter(route(spec, None, rng).primary for _ in range(10_000))
    for counts in (by_key, by_rng):
        for arm in spec.routes:
            assert abs(counts[arm.model] / 10_000 - arm.weight) < 0.02, counts
    other = random.Random(99)
    for i in range(500):
        key = f"customer-{i}"
        assert route(spec, key, rng).primary == route(spec, key, other).primary
    # the hash is stable across processes and releases: fixed values
    assert key_fraction("customer-1") == pytest.approx(
        int.from_bytes(__import__("hashlib").sha256(b"customer-1").digest()[:8], "big") / 2**64
    )


def test_canary_shadow_single_and_bluegreen_routing() -> None:
    rng = random.Random(1)
    spec = DeploymentSpec.canary_of("m@1", "m@2", 0.1, sticky_key="user")
    share = sum(route(spec, f"u{i}", rng).primary == "m@2" for i in range(10_000)) / 10_000
    assert abs(share - 0.1) < 0.02
    # stepping the weight up only moves keys onto the canary
    wider = DeploymentSpec.canary_of("m@1", "m@2", 0.5, sticky_key="user")
    for i in range(1000):
        if route(spec, f"u{i}", rng).primary == "m@2":
            assert route(wider, f"u{i}", rng).primary == "m@2"
    none = DeploymentSpec.canary_of("m@1", "m@2", 0.0)
    assert {route(none, None, rng).primary for _ in range(200)} == {"m@1"}
    full = DeploymentSpec.canary_of("m@1", "m@2", 1.0)
    assert {route(full, None, rng).primary for _ in range(200)} == {"m@2"}

    decision = route(DeploymentSpec.shadow_of("m@1", "m@2"), "k", rng)
    assert (decision.primary, decision.shadows) == ("m@1", ("m@2",))
    assert route(DeploymentSpec.single("m@3"), None, rng).primary == "m@3"
    green = DeploymentSpec.bluegreen("m@1", "m@2", live="green")
    assert route(green, None, rng).primary == "m@2"


def test_spec_round_trips_as_data() -> None:
    specs = [
        DeploymentSpec.single("m@1", fallback=Fallback("constant", value={"label": 0})),
        DeploymentSpec.ab({"m@1": 0.5, "m@2": 0.5}, sticky_key="id", onnx=True),
        DeploymentSpec.canary_of("m@1", "m@2", 0.25, timeout_ms=80),
        DeploymentSpec.shadow_of("m@1", "m@2", fallback=Fallback("version", "m@1")),
        DeploymentSpec.bluegreen("m@1", "m@2", live="green"),
    ]
    for spec in specs:
        assert DeploymentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# -- the command line --------------------------------------------------------------------


def test_cli_deploy_list_show_weight_switch_rollback(models: Settings, tmp_path: Path) -> None:
    from loopml.cli import app

    runner = CliRunner()
    base = ["--db-url", models.db_url, "--artifacts-url", models.artifacts_url]

    def ok(*argv: str) -> str:
        result = runner.invoke(app, [*base, *argv])
        assert result.exit_code == 0, result.output
        return result.output

    ok("deploy", "api", "--model", "churn@champion", "--reason", "launch")
    ok(
        "deploy",
        "api",
        "--strategy",
        "ab",
        "--model",
        "churn@1=0.5",
        "--model",
        "churn@2=0.5",
        "--sticky-key",
        "customer_id",
    )
    ok("deploy", "can", "--strategy", "canary", "--model", "churn@1", "--canary", "churn@2",
       "--weight", "0.1", "--fallback", "churn@1")  # fmt: skip
    ok("deployments", "weight", "can", "0.3")
    ok("deploy", "bg", "--strategy", "bluegreen", "--blue", "churn@1", "--green", "churn@2")
    ok("deployments", "switch", "bg")
    file = tmp_path / "deploy.toml"
    file.write_text(
        'strategy = "shadow"\nprimary = "churn@1"\nshadow = "churn@2"\ntimeout_ms = 300\n'
        '[fallback]\nkind = "constant"\nvalue = 0\n'
    )
    ok("deploy", "sh", "--from-file", str(file))
    yaml = tmp_path / "deploy.yaml"
    yaml.write_text("strategy: single\nmodel: churn@1\n")
    ok("deploy", "one", "--from-file", str(yaml), "--fallback-constant", '{"label": 1}')

    listed = json.loads(ok("deployments", "list", "--json"))
    assert [(d["name"], d["revision"]) for d in listed] == [
        ("api", 2),
        ("bg", 2),
        ("can", 2),
        ("one", 1),
        ("sh", 1),
    ]
    assert "api" in ok("deployments", "list")
    shown = json.loads(ok("deployments", "show", "can", "--json"))
    assert shown["deployment"]["spec"]["canary_weight"] == 0.3
    assert [h["revision"] for h in shown["history"]] == [1, 2]
    assert (
        json.loads(ok("deployments", "show", "bg", "--json"))["deployment"]["spec"]["live"]
        == "green"
    )
    assert json.loads(ok("deployments", "show", "one", "--json"))["deployment"]["spec"][
        "fallback"
    ] == {"kind": "constant", "value": {"label": 1}}
    assert "churn@1" in ok("deployments", "show", "api")

    ok("rollback", "api", "--reason", "bad")
    api = json.loads(ok("deployments", "show", "api", "--json"))
    assert api["deployment"]["revision"] == 3
    assert api["deployment"]["spec"]["routes"] == [{"model": "churn@2", "weight": 1.0}]
    ok("rollback", "api", "--to", "2")

    bad = runner.invoke(
        app, [*base, "deploy", "x", "--strategy", "ab", "--model", "churn@1=0.5", "--model",
              "churn@2=0.4"]
    )  # fmt: skip
    assert bad.exit_code != 0
    assert "sum to 0.9" in str(bad.exception) + bad.output
