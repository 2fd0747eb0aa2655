"""Model cards: editable fields, the facts of a version, importance, escaping, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.core import ValidationError
from loopml.registry import (
    ModelRegistry,
    build_card,
    load_card_file,
    merge_card,
    parse_card_settings,
    render_html,
)
from tests.registry.conftest import Trained

GATE = {"kind": "metric", "metric": "test.accuracy", "min": 0.8}
SCRIPT = "<script>alert('card')</script> & more"


def test_card_holds_fields_data_metrics_gates_approvals_importance_and_lineage(
    trained: Trained,
) -> None:
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("toy", run_id=trained.good_run)
        registry.update_model(
            "toy",
            card={"purpose": "Rank toy rows", "limitations": "Synthetic data only", "owners": "ml"},
            gates=[GATE],
            requires_approval=True,
        )
        registry.evaluate_gates(version.ref)
        registry.approve(version.ref, "reviewed the card")
        registry.promote(version.ref, reason="first champion")

        card = build_card(registry, version.ref)
        permutation = card.importance[0]
        assert permutation.method == "permutation" and permutation.strongest == "a"
        assert [name for name, _, _ in permutation.values][-1] == "c"  # pure noise
        assert card.fields == {
            "purpose": "Rank toy rows",
            "intended_use": "",
            "limitations": "Synthetic data only",
            "owners": "ml",
        }
        text = registry.card(version.ref)

    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[:5] == [
        "## Summary",
        "## Purpose",
        "## Intended use",
        "## Limitations",
        "## Owners",
    ]
    for expected in (
        "Rank toy rows",
        "Synthetic data only",
        "--set intended_use=...",  # how to fill the empty field
        f"Trained on {trained.dataset}; split main.",
        "| accuracy |",
        "| metric:test.accuracy | metric | yes |",
        "| approved | ",
        "reviewed the card",
        "| champion | - | 1 |",
        "first champion",
        "permutation importance: mean drop in accuracy",
        f"└─ run {trained.good_run[:12]}",
        f"dataset {trained.dataset} (400 rows)",
        "| scikit-learn |",
    ):
        assert expected in text, expected
    metrics_row = next(line for line in text.splitlines() if line.startswith("| accuracy |"))
    assert metrics_row.count("|") == 7  # cv_mean, cv_std, train, validation, test


def test_html_is_self_contained_and_escapes_user_text(trained: Trained) -> None:
    with ModelRegistry(trained.settings) as registry:
        version = registry.register("toy", run_id=trained.good_run)
        registry.update_model("toy", card={"limitations": SCRIPT, "notes": "a | b"})
        page = registry.card(version.ref, "html", importance=False)
        markdown = registry.card(version.ref, importance=False)
        card = build_card(registry, version.ref, importance=False)

    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;card&#x27;)" in page
    assert "&amp; more" in page
    assert "src=" not in page and "href=" not in page and "<link" not in page
    assert render_html(card).count("<section>") == len(card.fields) + 8
    assert "feature importance not computed (--no-importance)" in page
    assert "<script" not in markdown and "&lt;script&gt;" in markdown
    with pytest.raises(ValidationError, match="markdown or html"):
        ModelRegistry(trained.settings).card(version.ref, "pdf")


def test_card_field_parsing(tmp_path: Path) -> None:
    assert parse_card_settings(["purpose=Rank = score", "limitations="]) == {
        "purpose": "Rank = score",
        "limitations": "",
    }
    assert merge_card({"purpose": "old", "limitations": "x"}, {"limitations": " "}) == {
        "purpose": "old"
    }
    toml = tmp_path / "card.toml"
    toml.write_text('[card]\npurpose = "p"\nintended_use = """\nline one\nline two\n"""\n')
    assert load_card_file(toml) == {"purpose": "p", "intended_use": "line one\nline two\n"}
    yaml = tmp_path / "card.yaml"
    yaml.write_text("limitations: only toy data\n")
    assert load_card_file(yaml) == {"limitations": "only toy data"}
    with pytest.raises(ValidationError, match="expected KEY=VALUE"):
        parse_card_settings(["purpose"])
    with pytest.raises(ValidationError, match="'Bad Key' is not valid"):
        parse_card_settings(["Bad Key=x"])
    yaml.write_text("purpose: [1, 2]\n")
    with pytest.raises(ValidationError, match="must be text"):
        load_card_file(yaml)


def test_cli_describe_and_card(trained: Trained, tmp_path: Path) -> None:
    with ModelRegistry(trained.settings) as registry:
        registry.register("toy", run_id=trained.good_run)
    runner = CliRunner()
    base = ["--db-url", trained.settings.db_url, "--artifacts-url", trained.settings.artifacts_url]
    fields = tmp_path / "card.toml"
    fields.write_text('purpose = "From a file"\nlimitations = "Toy data"\n')

    result = runner.invoke(
        app,
        [*base, "models", "describe", "toy", "-f", str(fields), "--set", "owners=ml team"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, [*base, "models", "describe", "toy", "--set", "limitations=", "--json"]
    )
    assert json.loads(result.output)["card"] == {"owners": "ml team", "purpose": "From a file"}

    result = runner.invoke(app, [*base, "models", "card", "toy@1", "--no-importance"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Model card: toy@1") and "From a file" in result.output
    page = tmp_path / "card.html"
    result = runner.invoke(
        app,
        [*base, "models", "card", "toy@1", "--format", "html", "-o", str(page), "--no-importance"],
    )
    assert result.exit_code == 0, result.output
    assert "<h2>Owners</h2>" in page.read_text()
