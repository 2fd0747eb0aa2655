"""The nine kinds of expectation, one frozen dataclass each.

Build them with :data:`loopml.data.expect` rather than by class; the classes are
here so that results, stored dicts and files all name the same things.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loopml.core import ValidationError
from loopml.data._valid_base import (
    TYPE_KINDS,
    Expectation,
    function_path,
    got,
    import_function,
    parse_duration,
)

__all__ = [
    "ExpectAllowedValues",
    "ExpectBetween",
    "ExpectColumnType",
    "ExpectColumns",
    "ExpectCustom",
    "ExpectFresh",
    "ExpectNotNull",
    "ExpectRowCount",
    "ExpectUnique",
]

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, kw_only=True)
class ExpectColumns(Expectation):
    """The data has every ``required`` column and, unless ``allow_extra``, no other."""

    kind = "columns"
    required: Sequence[str] = ()
    allow_extra: bool = True

    def _check_own_args(self) -> None:
        self._check_names("required", self.required, allow_empty=True)
        if not isinstance(self.allow_extra, bool):
            self._bad("allow_extra", f"must be true or false; {got(self.allow_extra)}")


@dataclass(frozen=True, kw_only=True)
class _ColumnExpectation(Expectation):
    column: str

    @property
    def subject(self) -> str | None:
        return self.column

    def columns_read(self) -> tuple[str, ...] | None:
        return (self.column,)

    def _check_own_args(self) -> None:
        self._check_column(self.column)


@dataclass(frozen=True, kw_only=True)
class ExpectColumnType(_ColumnExpectation):
    """Every non-null value of ``column`` is of ``dtype``: one of :data:`TYPE_KINDS`."""

    kind = "column_type"
    dtype: str

    def _check_own_args(self) -> None:
        super()._check_own_args()
        if self.dtype not in TYPE_KINDS:
            self._bad("dtype", f"must be one of {', '.join(TYPE_KINDS)}; {got(self.dtype)}")


@dataclass(frozen=True, kw_only=True)
class ExpectNotNull(_ColumnExpectation):
    """``column`` holds no null (None, NaN, NaT, NA) value."""

    kind = "not_null"


@dataclass(frozen=True, kw_only=True)
class ExpectBetween(_ColumnExpectation):
    """Non-null values of a numeric ``column`` lie in ``[min, max]``; either bound optional."""

    kind = "between"
    min: float | None = None
    max: float | None = None

    def _check_own_args(self) -> None:
        super()._check_own_args()
        self._check_bounds(self.min, self.max)


@dataclass(frozen=True, kw_only=True)
class ExpectAllowedValues(_ColumnExpectation):
    """Every non-null value of ``column`` is one of ``values``."""

    kind = "allowed_values"
    values: Sequence[Any]

    def _check_own_args(self) -> None:
        super()._check_own_args()
        if isinstance(self.values, str) or not isinstance(self.values, Sequence):
            self._bad("values", f"must be a list of values; {got(self.values)}")
        if not self.values:
            self._bad("values", "must hold at least one value; got an empty list")
        for value in self.values:
            if not isinstance(value, _SCALARS):
                self._bad("values", f"must hold strings, numbers or booleans; {got(value)}")


@dataclass(frozen=True, kw_only=True)
class ExpectUnique(Expectation):
    """No two rows share a value of ``columns`` (one name, or a list for a composite key).

    Rows with a null in any key column are left out, as SQL's UNIQUE does.
    """

    kind = "unique"
    columns: str | Sequence[str]

    @property
    def key(self) -> list[str]:
        """The key columns as a list."""
        return [self.columns] if isinstance(self.columns, str) else list(self.columns)

    @property
    def subject(self) -> str | None:
        if not isinstance(self.columns, str | Sequence):  # a bad argument, before check_args
            return None
        return ", ".join(str(c) for c in self.key)

    def _check_own_args(self) -> None:
        if isinstance(self.columns, str):
            self._check_column(self.columns, "columns")
        else:
            self._check_names("columns", self.columns)


@dataclass(frozen=True, kw_only=True)
class ExpectRowCount(Expectation):
    """The data has between ``min`` and ``max`` rows (inclusive; either bound optional)."""

    kind = "row_count"
    min: int | None = None
    max: int | None = None

    def _check_own_args(self) -> None:
        self._check_bounds(self.min, self.max, integer=True)


@dataclass(frozen=True, kw_only=True)
class ExpectFresh(_ColumnExpectation):
    """The newest value of datetime ``column`` is at most ``max_age`` older than ``now``.

    ``now`` defaults to the current UTC time at validation; naive timestamps are read as UTC.
    """

    kind = "fresh"
    max_age: str | timedelta
    now: datetime | None = None

    @property
    def max_age_delta(self) -> timedelta:
        """``max_age`` as a timedelta (call :meth:`check_args` first)."""
        if isinstance(self.max_age, timedelta):
            return self.max_age
        return parse_duration(self.max_age)

    def _check_own_args(self) -> None:
        super()._check_own_args()
        if isinstance(self.max_age, str):
            try:
                parse_duration(self.max_age)
            except ValidationError as exc:
                self._bad("max_age", str(exc), exc)
        elif not isinstance(self.max_age, timedelta):
            problem = f"must be a duration like '2d' or a timedelta; {got(self.max_age)}"
            self._bad("max_age", problem)
        if self.max_age_delta <= timedelta(0):
            self._bad("max_age", f"must be positive; got {self.max_age!r}")
        if self.now is not None and not isinstance(self.now, datetime):
            self._bad("now", f"must be a datetime or None; {got(self.now)}")

    def _dump(self, name: str, value: Any) -> Any:
        if isinstance(value, timedelta):
            return f"{value.total_seconds():g}s"
        if isinstance(value, datetime):
            return value.isoformat()
        return super()._dump(name, value)

    @classmethod
    def _load(cls, name: str, value: Any) -> Any:
        if name == "now" and isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValidationError(
                    f"expectation 'fresh': 'now' must be an ISO datetime; got {value!r}"
                ) from exc
        return value


@dataclass(frozen=True, kw_only=True)
class ExpectCustom(Expectation):
    """``function(batch)`` returns a boolean Series (one per row, False fails) or a bool.

    ``function`` is a callable or an import path ``"mypkg.checks:name"``. It sees
    one batch of rows at a time, so it must judge rows on their own.
    """

    kind = "custom"
    name: str
    function: Callable[[Any], Any] | str

    @property
    def check_name(self) -> str:
        return self.name

    def columns_read(self) -> tuple[str, ...] | None:
        return None

    def _where(self) -> str:
        return f"expect.custom({self.name!r})"

    def resolve(self) -> Callable[[Any], Any]:
        """The callable, importing it when ``function`` is a path."""
        if isinstance(self.function, str):
            return import_function(self.function)
        return self.function

    def _check_own_args(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            self._bad("name", f"must be a non-empty string; {got(self.name)}")
        if isinstance(self.function, str):
            try:
                import_function(self.function)
            except ValidationError as exc:
                self._bad("function", str(exc), exc)
        elif not callable(self.function):
            self._bad("function", f"must be a callable or 'module:name'; {got(self.function)}")

    def _dump(self, name: str, value: Any) -> Any:
        if name == "function" and callable(value):
            return function_path(value)
        return super()._dump(name, value)
