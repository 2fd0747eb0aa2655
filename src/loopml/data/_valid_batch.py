"""Checks that read rows, run one pandas batch at a time and tallied over all batches.

Types, nulls, ranges and allowed values are one lazily validated pandera schema
per batch, so every failure is collected; counts and examples come from pandera's
failure cases (one case per failing value, so a check's count is its number of
cases). Custom checks and freshness are computed directly with pandas (see
:meth:`BatchChecker._custom` for why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from loopml.data._report import MAX_EXAMPLES, jsonable
from loopml.data._valid_base import Expectation
from loopml.data._valid_kinds import (
    ExpectAllowedValues,
    ExpectBetween,
    ExpectColumnType,
    ExpectCustom,
    ExpectFresh,
    ExpectNotNull,
)

__all__ = ["BATCH_KINDS", "BatchChecker", "Tally", "dtype_kind"]

BATCH_KINDS = (
    ExpectColumnType,
    ExpectNotNull,
    ExpectBetween,
    ExpectAllowedValues,
    ExpectFresh,
    ExpectCustom,
)
_ACCEPTS = {
    "int": {"int"},
    "float": {"float"},
    "number": {"int", "float"},
    "string": {"string"},
    "bool": {"bool"},
    "datetime": {"datetime"},
}


@dataclass
class Tally:
    """One check's findings so far: failing count, first examples and rows, and problems."""

    failing: int = 0
    examples: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    found: set[str] = field(default_factory=set)
    problem: str | None = None
    returned_false: bool = False
    newest: pd.Timestamp | None = None

    def add(self, count: int, examples: Sequence[Any], rows: Sequence[int] = ()) -> None:
        """Count ``count`` more failing rows; keep the first distinct examples and rows."""
        self.failing += count
        for example in examples:
            value = jsonable(example)
            if len(self.examples) < MAX_EXAMPLES and value not in self.examples:
                self.examples.append(value)
        self.rows.extend(int(r) for r in rows[: MAX_EXAMPLES - len(self.rows)])


def dtype_kind(dtype: Any) -> str:
    """The type kind (int, float, string, bool, datetime) of a pandas dtype, else its name."""
    if pd.api.types.is_object_dtype(dtype):
        return "object"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def value_kind(value: object) -> str:
    """The type kind of one Python or numpy value, else its type's name."""
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime | np.datetime64):
        return "datetime"
    return type(value).__name__


def _distinct(series: pd.Series) -> list[Any]:
    """Up to MAX_EXAMPLES distinct values of ``series``, in order of appearance."""
    try:
        return list(series.drop_duplicates().head(MAX_EXAMPLES))
    except TypeError:  # unhashable values (lists, dicts); Tally.add still drops repeats
        return list(series.head(MAX_EXAMPLES * 4))


def _type_check(kind: str) -> Callable[[pd.Series], Any]:
    accepted = _ACCEPTS[kind]

    def check(series: pd.Series) -> Any:
        found = dtype_kind(series.dtype)
        if found in accepted:
            return True
        if found != "object":  # every value is of the wrong type; pandera lists each
            return pd.Series(False, index=series.index)
        return series.map(lambda value: value_kind(value) in accepted).astype(bool)

    return check


class BatchChecker:
    """Evaluate the row-reading expectations on batch after batch; see :attr:`tallies`."""

    def __init__(self, expectations: Sequence[Expectation], present: set[str]) -> None:
        self.tallies: dict[int, Tally] = {}
        self._checks: list[tuple[int, Expectation]] = []
        self._functions: dict[int, Callable[[Any], Any]] = {}
        for index, exp in enumerate(expectations):
            columns = exp.columns_read()
            if not isinstance(exp, BATCH_KINDS) or (columns and columns[0] not in present):
                continue
            self.tallies[index] = Tally()
            self._checks.append((index, exp))
            if isinstance(exp, ExpectCustom):
                self._functions[index] = exp.resolve()

    def columns_needed(self) -> list[str] | None:
        """The columns to read, or None for all of them (a custom check sees every column)."""
        needed: list[str] = []
        for _, exp in self._checks:
            columns = exp.columns_read()
            if columns is None:
                return None
            needed.extend(c for c in columns if c not in needed)
        return needed

    def feed(self, frame: pd.DataFrame, offset: int) -> None:
        """Check one batch whose first row is row ``offset`` of the data."""
        self._pandera(frame, offset)
        for index, exp in self._checks:
            if isinstance(exp, ExpectFresh):
                self._fresh(self.tallies[index], frame[exp.column])
            elif isinstance(exp, ExpectCustom):
                self._custom(self.tallies[index], self._functions[index], frame, offset)

    def _pandera(self, frame: pd.DataFrame, offset: int) -> None:
        checks: dict[str, list[pa.Check]] = {}
        routes: dict[tuple[str, int], int] = {}
        not_null: dict[str, list[int]] = {}
        for index, exp in self._checks:
            tally = self.tallies[index]
            if isinstance(exp, ExpectNotNull):
                not_null.setdefault(exp.column, []).append(index)
                continue
            check = self._pandera_check(exp, frame, tally)
            if check is not None and tally.problem is None:
                column = str(exp.subject)  # type, between and allowed values name one column
                routes[(column, len(checks.setdefault(column, [])))] = index
                checks[column].append(check)
        names = list(checks) + [c for c in not_null if c not in checks]
        if not names:
            return
        schema = pa.DataFrameSchema(
            {
                name: pa.Column(nullable=name not in not_null, checks=checks.get(name, []))
                for name in names
            }
        )
        try:
            schema.validate(frame[names], lazy=True)
        except pa.errors.SchemaErrors as exc:
            objects = {n for n in names if pd.api.types.is_object_dtype(frame[n].dtype)}
            self._tally_failures(exc.failure_cases, routes, not_null, objects, offset)

    def _pandera_check(self, exp: Expectation, frame: pd.DataFrame, tally: Tally) -> Any:
        if isinstance(exp, ExpectColumnType):
            found = dtype_kind(frame[exp.column].dtype)
            if found != "object" and found not in _ACCEPTS[exp.dtype]:
                tally.found.add(found)
            return pa.Check(_type_check(exp.dtype), name=f"type_{exp.dtype}")
        if isinstance(exp, ExpectBetween):
            found = dtype_kind(frame[exp.column].dtype)
            if found not in {"int", "float"}:
                tally.problem = f"expected a numeric column, found {found}"
                return None
            if exp.min is not None and exp.max is not None:
                return pa.Check.in_range(exp.min, exp.max)
            return pa.Check.ge(exp.min) if exp.min is not None else pa.Check.le(exp.max)
        if isinstance(exp, ExpectAllowedValues):
            return pa.Check.isin(list(exp.values))
        return None

    def _tally_failures(
        self,
        cases: pd.DataFrame,
        routes: dict[tuple[str, int], int],
        not_null: dict[str, list[int]],
        object_columns: set[str],
        offset: int,
    ) -> None:
        nulls = cases["check"] == "not_nullable"
        for column, group in cases[nulls].groupby("column", sort=False):
            rows = [offset + int(i) for i in group["index"].head(MAX_EXAMPLES)]
            for index in not_null[str(column)]:
                self.tallies[index].add(len(group), [], rows)
        for (column, number), group in cases[~nulls].groupby(["column", "check_number"]):
            index = routes[(str(column), int(number))]
            tally = self.tallies[index]
            raised = group["index"].isna()
            if raised.any():  # pandera reports a check that raised as one case, its error
                tally.problem = f"the check raised {group['failure_case'][raised].iloc[0]}"
                continue
            values = _distinct(group["failure_case"])
            tally.add(len(group), values)
            if str(column) in object_columns:  # which types a mixed column holds
                tally.found.update(value_kind(v) for v in values)

    @staticmethod
    def _fresh(tally: Tally, series: pd.Series) -> None:
        found = dtype_kind(series.dtype)
        if found != "datetime":
            tally.problem = f"expected a datetime column, found {found}"
            return
        newest = series.max()
        if pd.isna(newest):
            return
        stamp = pd.Timestamp(newest)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        if tally.newest is None or stamp > tally.newest:
            tally.newest = stamp

    @staticmethod
    def _custom(
        tally: Tally, function: Callable[[Any], Any], frame: pd.DataFrame, offset: int
    ) -> None:
        # Computed directly, not through pandera: pandera reports a failing
        # dataframe-level check as one case per (row, non-null column), which costs
        # rows x columns and loses rows whose values are all null.
        if tally.problem is not None:
            return
        try:
            outcome = function(frame)
        except Exception as exc:  # a user's function may raise anything; report it
            tally.problem = f"the function raised {type(exc).__name__}: {exc}"
            return
        if isinstance(outcome, bool | np.bool_):
            tally.returned_false = tally.returned_false or not bool(outcome)
            return
        if (
            not isinstance(outcome, pd.Series)
            or not pd.api.types.is_bool_dtype(outcome.dtype)
            or len(outcome) != len(frame)
        ):
            what = type(outcome).__name__
            if isinstance(outcome, pd.Series):
                what = f"a Series of {len(outcome)} {outcome.dtype} values"
            tally.problem = (
                f"the function must return a boolean Series with one value per row "
                f"({len(frame)}) or a bool; got {what}"
            )
            return
        # A null outcome is not a pass: the row was not shown to be good.
        failing = np.flatnonzero(~outcome.fillna(False).to_numpy(dtype=bool))
        examples = frame.iloc[failing[:MAX_EXAMPLES]].to_dict("records")
        tally.add(len(failing), examples, [offset + int(i) for i in failing[:MAX_EXAMPLES]])
