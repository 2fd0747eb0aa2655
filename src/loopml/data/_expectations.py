"""Declaring expectations: the :data:`expect` factory, files and stored dicts.

An expectation says what a dataset must look like; :func:`loopml.data.validate`
checks data against a list of them and returns a report. Declare them in Python::

    exps = [
        expect.columns(required=["id", "age"], allow_extra=True),
        expect.column_type("age", "int"),
        expect.between("age", min=0, max=120, severity="warn"),
        expect.unique("id"),
        expect.fresh("ts", max_age="2d"),
    ]

or in a TOML/YAML file read by :func:`load_expectations` (the format is described
in ``_valid_files``). Each expectation stores its arguments verbatim; they are
checked by ``check_args()`` when validating or loading, and ``to_dict()`` plus
:func:`expectations_from_dict` round-trip them for storage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from loopml.core import ValidationError
from loopml.data._valid_base import TYPE_KINDS, Expectation, Severity, got
from loopml.data._valid_files import expectations_from_document, read_expectations_file
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

__all__ = [
    "TYPE_KINDS",
    "Expectation",
    "Severity",
    "expect",
    "expectations_from_dict",
    "load_expectations",
]


class _Expect:
    """Constructors for every expectation kind; use the module-level :data:`expect`."""

    def columns(
        self, required: Sequence[str] = (), *, allow_extra: bool = True, severity: str = "fail"
    ) -> ExpectColumns:
        """Every ``required`` column is present; unless ``allow_extra``, no other column is."""
        return ExpectColumns(required=required, allow_extra=allow_extra, severity=severity)

    def column_type(self, column: str, dtype: str, *, severity: str = "fail") -> ExpectColumnType:
        """Non-null values are of ``dtype``: int, float, number, string, bool or datetime."""
        return ExpectColumnType(column=column, dtype=dtype, severity=severity)

    def not_null(self, column: str, *, severity: str = "fail") -> ExpectNotNull:
        """``column`` has no null value."""
        return ExpectNotNull(column=column, severity=severity)

    def between(
        self,
        column: str,
        *,
        min: float | None = None,
        max: float | None = None,
        severity: str = "fail",
    ) -> ExpectBetween:
        """Non-null values lie in ``[min, max]`` (inclusive); either bound may be None."""
        return ExpectBetween(column=column, min=min, max=max, severity=severity)

    def allowed_values(
        self, column: str, values: Sequence[Any], *, severity: str = "fail"
    ) -> ExpectAllowedValues:
        """Non-null values are among ``values``."""
        return ExpectAllowedValues(column=column, values=values, severity=severity)

    def unique(self, columns: str | Sequence[str], *, severity: str = "fail") -> ExpectUnique:
        """No two rows share a value of ``columns`` (a name, or a list for a composite key)."""
        return ExpectUnique(columns=columns, severity=severity)

    def row_count(
        self,
        *,
        min: int | None = None,
        max: int | None = None,
        severity: str = "fail",
    ) -> ExpectRowCount:
        """The data has between ``min`` and ``max`` rows (inclusive); either may be None."""
        return ExpectRowCount(min=min, max=max, severity=severity)

    def fresh(
        self,
        column: str,
        *,
        max_age: str | timedelta,
        now: datetime | None = None,
        severity: str = "fail",
    ) -> ExpectFresh:
        """The newest timestamp in ``column`` is at most ``max_age`` (``"90s"``, ``"2d"``) old.

        ``now`` is the reference time (the current UTC time when None); naive
        timestamps are read as UTC.
        """
        return ExpectFresh(column=column, max_age=max_age, now=now, severity=severity)

    def custom(
        self, name: str, function: Callable[[Any], Any] | str, *, severity: str = "fail"
    ) -> ExpectCustom:
        """``function(batch)`` returns a boolean Series (False rows fail) or one bool.

        ``function`` may be an import path ``"mypkg.checks:name"``. It is called once
        per batch of rows, so a check must judge each row (or batch) on its own.
        """
        return ExpectCustom(name=name, function=function, severity=severity)


expect: Final = _Expect()
"""Build expectations: ``expect.not_null("age")``, ``expect.between("age", min=0)``, ..."""


def expectations_from_dict(
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, source: str = "<dict>"
) -> list[Expectation]:
    """Rebuild expectations from stored dicts or from a document in the file format.

    ``data`` is one :meth:`Expectation.to_dict` result, a list of them, or a mapping
    with ``columns`` / ``table`` / ``custom`` sections as in an expectations file.
    Arguments are checked (custom functions given by path are imported).

    Raises:
        ValidationError: a dict that is not an expectation, or a bad argument.
        ConfigError: a bad key or value in a file-format document (named by ``source``).
    """
    if isinstance(data, Mapping) and "kind" not in data:
        return expectations_from_document(data, source)
    items = [data] if isinstance(data, Mapping) else data
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise ValidationError(f"expectations must be a dict or a list of dicts; {got(data)}")
    built = [Expectation.from_dict(item) for item in items]
    for exp in built:
        exp.check_args()
    return built


def load_expectations(path: str | os.PathLike[str]) -> list[Expectation]:
    """Read expectations from a ``.toml``, ``.yaml`` or ``.yml`` file.

    Raises:
        ConfigError: the file is unreadable or unparsable, or a key or value is wrong;
            the message names the file, the key path (``columns.age.min``) and what
            was expected.
    """
    return read_expectations_file(Path(path))
