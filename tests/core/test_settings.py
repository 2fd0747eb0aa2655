"""Settings precedence: argument > environment > loopml.toml > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core import ConfigError, load_settings


def test_defaults_live_in_dot_loopml(tmp_path: Path) -> None:
    settings = load_settings(project_dir=tmp_path, environ={})
    assert settings.home == (tmp_path / ".loopml").resolve()
    assert settings.db_url == f"sqlite:///{settings.home / 'loopml.db'}"
    assert settings.artifacts_url == str(settings.home / "artifacts")
    assert settings.system_metrics is True


def test_toml_beats_default(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text('[loopml]\nhome = "state"\nsystem_metrics = false\n')
    settings = load_settings(project_dir=tmp_path, environ={})
    assert settings.home == (tmp_path / "state").resolve()
    assert settings.system_metrics is False


def test_environment_beats_toml(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text('[loopml]\nhome = "from-toml"\n')
    settings = load_settings(project_dir=tmp_path, environ={"LOOPML_HOME": str(tmp_path / "env")})
    assert settings.home == tmp_path / "env"


def test_argument_beats_environment(tmp_path: Path) -> None:
    settings = load_settings(
        project_dir=tmp_path,
        environ={"LOOPML_DB_URL": "sqlite:///env.db"},
        db_url="sqlite:///arg.db",
    )
    assert settings.db_url == "sqlite:///arg.db"


def test_empty_environment_value_is_ignored(tmp_path: Path) -> None:
    settings = load_settings(project_dir=tmp_path, environ={"LOOPML_HOME": ""})
    assert settings.home == (tmp_path / ".loopml").resolve()


def test_sad_bad_boolean_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOOPML_SYSTEM_METRICS must be a boolean.*'maybe'"):
        load_settings(project_dir=tmp_path, environ={"LOOPML_SYSTEM_METRICS": "maybe"})


def test_sad_bad_interval(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOOPML_FLUSH_INTERVAL_S must be greater than 0"):
        load_settings(project_dir=tmp_path, environ={"LOOPML_FLUSH_INTERVAL_S": "-1"})


def test_sad_unknown_toml_key_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text("[loopml]\nhomee = 'x'\n")
    with pytest.raises(ConfigError, match=r"loopml.toml: unknown setting\(s\) homee"):
        load_settings(project_dir=tmp_path, environ={})


def test_sad_broken_toml_names_file(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text("[loopml\n")
    with pytest.raises(ConfigError, match="loopml.toml is not valid TOML"):
        load_settings(project_dir=tmp_path, environ={})


def test_sad_unknown_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) colour"):
        load_settings(project_dir=tmp_path, environ={}, colour="blue")
