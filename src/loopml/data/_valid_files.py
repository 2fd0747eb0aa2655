"""Expectations read from a TOML or YAML document, written per column.

The document has three optional sections::

    columns:                       # every column listed is required
      id:      {type: int, nullable: false, unique: true}
      age:     {type: int, min: 0, max: 120, severity: warn}
      carrier: {allowed: [AA, UA]}
      ts:      {type: datetime, max_age: 2d}
    table:
      row_count: {min: 1, max: 1000000, severity: fail}
      allow_extra_columns: true    # false: columns not listed fail
      unique: [[carrier, flight]]  # composite keys (a name or a list of names each)
    custom:
      - {name: margin_positive, function: "mypkg.checks:margin_positive", severity: warn}

It becomes, in this order: one ``columns`` check, then per column its type,
not-null, unique, between, allowed-values and freshness checks, then the table's
row count and keys, then the custom checks. Every error is a :class:`ConfigError`
naming the source, the key path (``columns.age.min``) and what was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from loopml.core import ConfigError
from loopml.data._valid_base import ArgumentError, Expectation, Severity, got
from loopml.data._valid_kinds import (
    ExpectAllowedValues,
    ExpectBetween,
    ExpectColumns,
    ExpectColumnType,
    ExpectCustom,
    ExpectFresh,
    ExpectNotNull,
    ExpectRowCount,
    ExpectUnique,
)

__all__ = ["expectations_from_document", "read_expectations_file"]

_SECTIONS = ("columns", "table", "custom")
_COLUMN_KEYS = ("type", "nullable", "unique", "min", "max", "allowed", "max_age", "severity")
_TABLE_KEYS = ("row_count", "allow_extra_columns", "unique")
_ROW_COUNT_KEYS = ("min", "max", "severity")
_CUSTOM_KEYS = ("name", "function", "severity")
# Expectation argument -> the key that sets it in a file, to name the key of a bad argument.
_ARGUMENT_KEYS = {"dtype": "type", "values": "allowed", "columns": "unique"}


def read_expectations_file(path: Path) -> list[Expectation]:
    """Parse ``path`` (``.toml``, ``.yaml`` or ``.yml``) into expectations.

    Raises:
        ConfigError: an unsupported extension, an unreadable or unparsable file, or a
            bad key or value (the message names the file and the key path).
    """
    suffix = path.suffix.lower()
    if suffix not in {".toml", ".yaml", ".yml"}:
        raise ConfigError(
            f"{path}: expectations file must end in .toml, .yaml or .yml; got {suffix!r}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read expectations file: {exc}") from exc
    try:
        document = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        language = "TOML" if suffix == ".toml" else "YAML"
        raise ConfigError(f"{path}: not valid {language}: {exc}") from exc
    return expectations_from_document({} if document is None else document, str(path))


def expectations_from_document(document: object, source: str) -> list[Expectation]:
    """Turn a parsed document (see the module docstring) into expectations.

    Raises:
        ConfigError: a bad key or value; the message starts with ``source`` and the key path.
    """
    reader = _Reader(source)
    top = reader.table(document, "", _SECTIONS)
    columns = reader.table(top.get("columns", {}), "columns", None)
    table = reader.table(top.get("table", {}), "table", _TABLE_KEYS)
    allow_extra = table.get("allow_extra_columns", True)
    reader.boolean(allow_extra, "table.allow_extra_columns")
    out: list[Expectation] = []
    exp: Expectation
    if columns or not allow_extra:
        exp = ExpectColumns(required=[str(c) for c in columns], allow_extra=allow_extra)
        out.append(reader.built(exp, "columns"))
    for name, spec in columns.items():
        out.extend(_column_expectations(reader, str(name), spec))
    if "row_count" in table:
        limits = reader.table(table["row_count"], "table.row_count", _ROW_COUNT_KEYS)
        exp = ExpectRowCount(
            min=limits.get("min"), max=limits.get("max"), severity=limits.get("severity", "fail")
        )
        out.append(reader.built(exp, "table.row_count"))
    keys = table.get("unique", [])
    if not isinstance(keys, list):
        problem = f"must be a list of keys (a column or a list of columns); {got(keys)}"
        reader.fail("table.unique", problem)
    for index, key in enumerate(keys):
        out.append(reader.built(ExpectUnique(columns=key), f"table.unique[{index}]"))
    customs = top.get("custom", [])
    if not isinstance(customs, list):
        reader.fail("custom", f"must be a list of tables with name and function; {got(customs)}")
    for index, item in enumerate(customs):
        where = f"custom[{index}]"
        spec = reader.table(item, where, _CUSTOM_KEYS)
        for required in ("name", "function"):
            if required not in spec:
                reader.fail(f"{where}.{required}", "is required")
        exp = ExpectCustom(
            name=spec["name"], function=spec["function"], severity=spec.get("severity", "fail")
        )
        out.append(reader.built(exp, where))
    return out


def _column_expectations(reader: _Reader, name: str, raw: object) -> list[Expectation]:
    where = f"columns.{name}"
    spec = reader.table({} if raw is None else raw, where, _COLUMN_KEYS)
    severity = spec.get("severity", "fail")
    if severity not in tuple(Severity):  # checked here too: a column may declare no check
        reader.fail(f"{where}.severity", f"must be 'warn' or 'fail'; {got(severity)}")
    made: list[Expectation] = []
    if "type" in spec:
        made.append(ExpectColumnType(column=name, dtype=spec["type"], severity=severity))
    if not reader.boolean(spec.get("nullable", True), f"{where}.nullable"):
        made.append(ExpectNotNull(column=name, severity=severity))
    if reader.boolean(spec.get("unique", False), f"{where}.unique"):
        made.append(ExpectUnique(columns=name, severity=severity))
    if "min" in spec or "max" in spec:
        made.append(
            ExpectBetween(column=name, min=spec.get("min"), max=spec.get("max"), severity=severity)
        )
    if "allowed" in spec:
        made.append(ExpectAllowedValues(column=name, values=spec["allowed"], severity=severity))
    if "max_age" in spec:
        made.append(ExpectFresh(column=name, max_age=spec["max_age"], severity=severity))
    return [reader.built(exp, where) for exp in made]


class _Reader:
    """Shape checks that raise :class:`ConfigError` naming the source and key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, cause: BaseException | None = None) -> NoReturn:
        location = f"{self.source}: {where}" if where else self.source
        raise ConfigError(f"{location} {problem}") from cause

    def table(self, value: object, where: str, keys: tuple[str, ...] | None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where or "document", f"must be a table of keys; {got(value)}")
        unknown = sorted(str(k) for k in value if keys is not None and k not in keys)
        if unknown:
            prefix = f"{where}." if where else ""
            self.fail(
                prefix + unknown[0],
                f"is not a known key; expected some of {', '.join(keys or ())}",
            )
        return dict(value)

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false; {got(value)}")
        return value

    def built(self, exp: Expectation, where: str) -> Expectation:
        try:
            exp.check_args()
        except ArgumentError as exc:
            # A key of its own for a column's or row count's arguments; the entry itself else.
            own = not isinstance(exp, ExpectUnique | ExpectColumns)
            key = _ARGUMENT_KEYS.get(exc.argument, exc.argument) if own else ""
            path = f"{where}.{key}" if where and key else where or key
            self.fail(path, exc.problem, exc)
        return exp
