"""``loopml serve`` refuses a bad option before it starts anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loopml.cli import load_commands

runner = CliRunner()


@pytest.mark.parametrize("interval", ["nan", "inf", "0", "3601"])
def test_a_segment_interval_outside_its_range_is_a_usage_error(interval: str) -> None:
    app = load_commands(["serve"])
    result = runner.invoke(app, ["serve", "churn-api", "--segment-interval", interval])
    assert result.exit_code == 2, result.output
    assert "--segment-interval" in result.output
