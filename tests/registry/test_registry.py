"""The registry through its public interface: register, aliases, gates, approval, promotion,
roles, the audit trail, digest-checked loading and lineage."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy import update

from loopml.core import IntegrityError, NotFoundError, PermissionDeniedError, ValidationError
from loopml.governance import Identity, Role, list_audit, verify_audit
from loopml.registry import LibraryVersionWarning, ModelRegistry, load_gates_file, parse_gates
from loopml.store import schema
from tests.registry.conftest import Trained

GATES = [
    {"kind": "metric", "metric": "test.accuracy", "min": 0.8},
    {"kind": "relative", "metric": "roc_auc", "max_drop": 0.01},
    {"kind": "latency", "max_ms": 250, "rows": 20},
    {"kind": "validation"},
]


def as_role(trained: Trained, role: Role, name: str | None = None) -> ModelRegistry:
    return ModelRegistry(trained.settings, identity=Identity(name or role.value, role, "token"))


def test_register_records_where_the_model_came_from(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("toy", run_id=trained.good_run, description="baseline")
        assert version.ref == "toy@1" and version.flavor == "sklearn"
        assert version.run_id == trained.good_run and version.dataset == trained.dataset
        assert version.split is not None and version.split["name"] == "main"
        assert [c["name"] for c in version.signature["inputs"]] == ["a", "b", "c"]
        assert version.signature["outputs"]["classes"] == [0, 1]
        assert "scikit-learn" in version.libraries
        assert version.metrics["test.accuracy"] > 0.8
        assert version.profile is not None and registry.artifacts.exists(version.profile)
        assert registry.register("toy", run_id=trained.weak_run).version == 2
        assert [v.version for v in registry.versions("toy")] == [1, 2]
        assert registry.get("toy").version == 2  # newest
        assert list(registry.load("toy@1").predict(_rows())) == [0, 1]


def _rows():  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame({"a": [-2.0, 2.0], "b": [0.0, 0.0], "c": [0.0, 0.0]})


def test_gates_promotion_and_approval(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        good = registry.register("toy", run_id=trained.good_run)
        weak = registry.register("toy", run_id=trained.weak_run)
        registry.update_model("toy", gates=GATES, requires_approval=True)
        assert registry.promotion_blockers(good.ref) == [
            "gates not evaluated against the current gates: "
            "run `loopml models evaluate toy@1` first",
            "approval required: no approver has approved toy@1",
        ]
        report = registry.evaluate_gates(good.ref)
        assert report.passed, [o.message for o in report.outcomes]
        with pytest.raises(PermissionDeniedError, match="approval required"):
            registry.promote(good.ref)
        registry.approve(good.ref, "checked the card")
        assert registry.promote(good.ref, reason="first champion").aliases == ["champion"]

        report = registry.evaluate_gates(weak.ref)
        assert not report.passed
        failed = {o.name: o for o in report.failed}
        assert failed["metric:test.accuracy"].message.startswith("test.accuracy = 0.")
        assert "< min 0.8 (short by" in failed["metric:test.accuracy"].message
        relative = failed["relative:roc_auc"]
        assert relative.evidence["champion_version"] == 1 and relative.value < -0.01
        registry.approve(weak.ref, "approved anyway")
        with pytest.raises(PermissionDeniedError, match="gate metric:test.accuracy failed"):
            registry.promote(weak.ref)
        assert registry.get("toy@champion").version == 1

        registry.reject(good.ref, "found a leak")
        assert "rejected it: found a leak" in registry.promotion_blockers(good.ref)[-1]


def test_aliases_move_atomically_with_history(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        registry.register("toy", run_id=trained.good_run)
        registry.register("toy", run_id=trained.weak_run)
        registry.set_alias("toy@1", "challenger")
        registry.set_alias("toy@2", "challenger", reason="newer")
        registry.promote("toy@1")  # no gates declared, no approval required
        assert registry.get_model("toy").aliases == {"challenger": 2, "champion": 1}
        assert registry.get("toy@challenger").version == 2
        registry.remove_alias("toy", "challenger")
        moves = [(m.alias, m.from_version, m.to_version) for m in registry.alias_history("toy")]
        assert moves == [
            ("challenger", None, 1),
            ("challenger", 1, 2),
            ("champion", None, 1),
            ("challenger", 2, None),
        ]
        with pytest.raises(NotFoundError, match="has no alias 'challenger'"):
            registry.get("toy@challenger")
        with pytest.raises(ValidationError, match="alias '1x!' is not valid"):
            registry.set_alias("toy@1", "1x!")


def test_roles_are_enforced_and_every_change_is_audited(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as owner:
        owner.register("toy", run_id=trained.good_run)
    viewer = as_role(trained, Role.VIEWER)
    contributor = as_role(trained, Role.CONTRIBUTOR, "carol")
    approver = as_role(trained, Role.APPROVER, "alice")
    with pytest.raises(PermissionDeniedError, match="model.register"):
        viewer.register("toy", run_id=trained.weak_run)
    contributor.register("toy", run_id=trained.weak_run)
    contributor.set_alias("toy@2", "challenger")
    with pytest.raises(PermissionDeniedError, match="model.promote"):
        contributor.promote("toy@2")
    with pytest.raises(PermissionDeniedError, match="model.approve"):
        contributor.approve("toy@2", "mine")
    approver.approve("toy@2", "fine")
    approver.promote("toy@2")
    for registry in (viewer, contributor, approver):
        registry.close()

    with ModelRegistry(trained.settings) as reader, reader.store.read() as conn:
        entries = list_audit(conn, limit=100, action="model.*")
        actions = [(e.actor, e.action) for e in reversed(entries)]
        assert ("carol", "model.register") in actions
        assert ("carol", "model.alias") in actions
        assert ("alice", "model.approve") in actions
        assert ("alice", "model.alias") in actions  # the champion move
        assert verify_audit(conn).ok


def test_loading_checks_the_digest_and_library_versions(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("toy", run_id=trained.good_run)
        blob = Path(registry.artifacts.url.removeprefix("file://"))
        path = next(p for p in blob.rglob(version.artifact.split(":")[1]))
        path.chmod(0o644)
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(IntegrityError):
            registry.load("toy@1")
        path.write_bytes(data)

        registry.store.transact(
            lambda conn: conn.execute(
                update(schema.model_versions)
                .where(schema.model_versions.c.id == version.id)
                .values(libraries='{"scikit-learn": "0.24.2"}')
            )
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry.load("toy@1")
        assert any(
            issubclass(w.category, LibraryVersionWarning)
            and "scikit-learn 0.24.2" in str(w.message)
            for w in caught
        )


def test_bad_input_is_refused_clearly(trained: Trained, tmp_path: Path) -> None:
    with ModelRegistry(trained.settings) as registry:
        with pytest.raises(NotFoundError, match="no registered model 'nope'"):
            registry.get("nope@1")
        with pytest.raises(ValidationError, match="model name 'bad name' is not valid"):
            registry.register("bad name", run_id=trained.good_run)
        with pytest.raises(NotFoundError, match="has no elsewhere/meta.json"):
            registry.register("toy", run_id=trained.good_run, artifact_path="elsewhere")
        with pytest.raises(ValidationError, match="kind must be one of"):
            parse_gates([{"kind": "vibes"}])
        with pytest.raises(ValidationError, match="unknown field\\(s\\) minimum"):
            parse_gates([{"kind": "metric", "metric": "x", "minimum": 1}])
        with pytest.raises(ValidationError, match="needs a number for min or max"):
            parse_gates([{"kind": "metric", "metric": "x"}])
        with pytest.raises(ValidationError, match="needs a comment"):
            registry.register("toy", run_id=trained.good_run)
            registry.approve("toy@1", " ")
    gates = tmp_path / "gates.toml"
    gates.write_text(
        '[[gates]]\nkind = "metric"\nmetric = "test.f1"\nmin = 0.7\n', encoding="utf-8"
    )
    assert load_gates_file(gates)[0]["name"] == "metric:test.f1"
    broken = tmp_path / "gates.yaml"
    broken.write_text("gates: {kind: metric}\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="must hold a list named 'gates'"):
        load_gates_file(broken)


def test_a_version_fit_without_a_stored_split_is_evaluated_on_its_own_held_out_rows(
    trained: Trained,
) -> None:
    from sklearn.linear_model import LogisticRegression

    from loopml.training import fit

    result = fit(
        LogisticRegression(), trained.dataset, target="label", settings=trained.settings, cv=2
    )
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("auto", run_id=result.run_id)
        assert version.split is not None and version.split["name"] == "auto"
        assert version.split["spec"]["kind"] == "stratified"
        registry.update_model("auto", gates=[{"kind": "latency", "max_ms": 500, "rows": 5}])
        report = registry.evaluate_gates(version.ref)
        assert report.passed and "(5 rows)" in report.outcomes[0].message


def test_lineage_runs_from_the_version_through_the_pipeline_to_the_data(trained: Trained) -> None:
    from loopml.registry import model_lineage, render_lineage
    from tests.training.pipes import training

    run = training.run({"ref": trained.dataset, "depth": 2}, settings=trained.settings)
    assert run.status == "succeeded", run.error
    step_run = run.step("train_tree").tracking_run_id
    assert step_run is not None
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("tree", run_id=step_run)
        assert version.pipeline_run_id == run.id
        chain = model_lineage(trained.settings, version)
    assert chain["run"]["id"] == step_run
    assert chain["pipeline_run"]["id"] == run.id and chain["pipeline_run"]["pipeline"] == "training"
    assert [d["ref"] for d in chain["datasets"]] == [trained.dataset]
    text = render_lineage(chain)
    assert (
        f"pipeline run {run.id[:12]} of training" in text and f"dataset {trained.dataset}" in text
    )


def test_a_custom_gate_gives_its_own_verdict(trained: Trained) -> None:
    check = "tests.registry.conftest:predicts_both_classes"
    with ModelRegistry(trained.settings) as registry:
        good = registry.register("toy", run_id=trained.good_run)
        weak = registry.register("toy", run_id=trained.weak_run)
        registry.update_model("toy", gates=[{"kind": "custom", "check": check, "name": "both"}])
        assert registry.evaluate_gates(good.ref).passed
        verdict = registry.evaluate_gates(weak.ref).outcomes[0]
        assert not verdict.passed and verdict.message.startswith("predicted classes [")


def test_models_lists_and_gate_changes_void_old_results(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        weak = registry.register("toy", run_id=trained.weak_run)
        ((model, latest),) = registry.models()
        assert (model.name, latest) == ("toy", 1)
        assert registry.update_model("toy").name == "toy"  # nothing to change: no error
        assert registry.evaluate_gates(weak.ref).passed  # no gates yet
        registry.update_model(
            "toy", gates=[{"kind": "metric", "metric": "test.roc_auc", "min": 0.9}]
        )
        assert registry.gate_report(weak.ref) is None
        assert registry.promotion_blockers(weak.ref) == [
            "gates not evaluated against the current gates: "
            "run `loopml models evaluate toy@1` first"
        ]
        with pytest.raises(PermissionDeniedError, match="cannot become champion"):
            registry.promote(weak.ref)


def test_the_cli_lists_models(trained: Trained) -> None:
    from typer.testing import CliRunner

    from loopml.cli import app

    with ModelRegistry(trained.settings) as registry:
        registry.register("toy", run_id=trained.good_run)
    if not trained.settings.db_url.startswith("sqlite"):
        return  # the CLI reads the store from the environment; SQLite is enough here
    result = CliRunner().invoke(
        app,
        [
            "--home",
            str(trained.settings.home),
            "--db-url",
            trained.settings.db_url,
            "--artifacts-url",
            trained.settings.artifacts_url,
            "models",
            "list",
            "--json",
        ],
        env={"LOOPML_SYSTEM_METRICS": "false"},
    )
    assert result.exit_code == 0, result.output
    assert '"latest_version": 1' in result.output


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"kind": "metric", "metric": "x", "min": "0.9", "max": 1}, "min must be a number"),
        ({"kind": "custom", "check": ":"}, "needs check"),
        ({"kind": "latency", "max_ms": 5, "rows": "ten"}, "rows must be a number"),
        ({"kind": "latency", "max_ms": 5, "percentile": 120}, "percentile must be in"),
        ({"kind": "validation", "name": ["x"]}, "name must be a string"),
    ],
)
def test_gates_with_bad_values_are_refused_when_declared(gate: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=message):
        parse_gates([gate])
