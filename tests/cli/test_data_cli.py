"""``loopml data ...`` end to end through the CLI, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from loopml.cli import app

runner = CliRunner()
CSV = "id,carrier,delay\n1,AA,5\n2,UA,-3\n3,AA,12\n"


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_ingest_show_list_diff_split(tmp_path: Path) -> None:
    home = tmp_path / ".loopml"
    data = tmp_path / "f.csv"
    data.write_text(CSV)
    code, out = _run(home, "data", "ingest", str(data), "--name", "flights")
    assert code == 0 and "created flights@1" in out
    code, out = _run(home, "data", "ingest", str(data), "--name", "flights")
    assert code == 0 and "unchanged" in out
    data.write_text(CSV + "4,DL,40\n")
    _run(home, "data", "ingest", str(data), "--name", "flights")
    code, out = _run(home, "data", "show", "flights", "--json")
    versions = json.loads(out)["versions"]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["row_count"] == 4
    code, out = _run(home, "data", "show", "flights@2")
    assert code == 0 and "carrier" in out
    code, out = _run(home, "data", "list", "--json")
    assert json.loads(out) == [{"name": "flights", "versions": 2, "latest": 2}]
    code, out = _run(home, "data", "diff", "flights@1", "flights@2", "--json")
    assert code == 0 and json.loads(out)["row_count"] == [3, 4]
    code, out = _run(home, "data", "split", "flights@2", "--ratios", "0.5,0.5", "--json")
    assert code == 0 and sum(json.loads(out)["counts"].values()) == 4


def test_validate_and_failed_ingest_print_report(tmp_path: Path) -> None:
    data = tmp_path / "f.csv"
    data.write_text(CSV)
    rules = tmp_path / "rules.yaml"
    rules.write_text("columns:\n  delay: {type: int, min: 0}\n  carrier: {allowed: [AA]}\n")
    code, out = _run(tmp_path / "h", "data", "validate", str(data), "-e", str(rules))
    assert code == 1 and "delay" in out and "carrier" in out
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopml",
            "--home",
            str(tmp_path / "h"),
            "data",
            "ingest",
            str(data),
            "--name",
            "f",
            "-e",
            str(rules),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "created no version" in result.stderr and "Traceback" not in result.stderr
    assert "delay" in result.stdout  # the report table


def test_add_and_checkout_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.txt").write_text(f"doc {i}")
    code, out = _run(tmp_path / "h", "data", "add", str(folder), "--name", "docs")
    assert code == 0 and "5 files" in out
    code, out = _run(tmp_path / "h", "data", "checkout", "docs@1", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "3.txt").read_text() == "doc 3"
    code, out = _run(tmp_path / "h", "data", "show", "docs", "--json")
    assert json.loads(out)["versions"][0]["files"] == 5
