"""A model card's editable fields: ``--set KEY=VALUE`` pairs, TOML/YAML files, merging."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loopml.core import ValidationError

__all__ = ["CARD_FIELDS", "load_card_file", "merge_card", "parse_card_settings"]

CARD_FIELDS = ("purpose", "intended_use", "limitations")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_fields(values: dict[Any, Any], origin: str) -> dict[str, str]:
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValidationError(
                f"{origin}: card field {key!r} is not valid: lowercase letters, digits and '_', "
                "starting with a letter"
            )
        if not isinstance(value, str):
            raise ValidationError(f"{origin}: card field {key!r} must be text; got {value!r}")
    return dict(values)


def parse_card_settings(pairs: list[str]) -> dict[str, str]:
    """``["purpose=Rank leads", "limitations=..."]`` -> a dict (an empty value removes)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"--set {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return _check_fields(values, "--set")


def load_card_file(path: str | Path) -> dict[str, str]:
    """Card fields from a TOML or YAML file: a table of text, at top level or under ``card``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read card file {file}: {exc.strerror}") from None
    try:
        if file.suffix == ".toml":
            import tomllib

            document: Any = tomllib.loads(text)
        else:
            import yaml

            document = yaml.safe_load(text)
    except Exception as exc:
        raise ValidationError(f"card file {file} does not parse: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("card"), dict):
        document = document["card"]
    if not isinstance(document, dict):
        raise ValidationError(f"card file {file} must hold a table of card fields")
    return _check_fields(document, f"card file {file}")


def merge_card(current: dict[str, str], updates: dict[str, str]) -> dict[str, str]:
    """``current`` with ``updates`` applied; a key set to an empty string is removed."""
    merged = {**current, **updates}
    return {k: v for k, v in merged.items() if v.strip()}
