"""Fixtures for pipeline tests: a work folder that steps note their calls in."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    folder = tmp_path / "work"
    folder.mkdir()
    return str(folder)
