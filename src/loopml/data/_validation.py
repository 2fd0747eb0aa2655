"""Validating data against expectations, producing a :class:`ValidationReport`.

``validate`` reads the data once, in batches (a Parquet file is streamed, 256k
rows at a time by default), and evaluates every expectation over the whole data:
counts are summed across batches and the first five examples kept; uniqueness
and the row count look at all rows at once. A check on a column that is not in
the data fails with a message saying so; it never raises.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from loopml.core import ValidationError
from loopml.data._report import CheckResult, ValidationReport
from loopml.data._valid_base import Expectation, Severity
from loopml.data._valid_batch import BatchChecker, Tally
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
from loopml.data._valid_sources import ValidationSource, open_validation_source

__all__ = ["DEFAULT_BATCH_SIZE", "validate"]

DEFAULT_BATCH_SIZE = 262_144


def validate(
    data: pd.DataFrame | pa.Table | str | os.PathLike[str],
    expectations: Iterable[Expectation],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ValidationReport:
    """Check ``data`` against ``expectations`` and report every result in order.

    Args:
        data: a pandas DataFrame, a pyarrow Table, or the path of a Parquet file
            (streamed in record batches, so memory stays bounded).
        expectations: built with :data:`loopml.data.expect` or loaded from a file.
        batch_size: rows per batch given to the column checks and custom functions.

    Raises:
        ValidationError: an expectation has a bad argument (named), ``data`` is of an
            unsupported type or not Parquet, or ``batch_size`` is not a positive int.
        NotFoundError: the Parquet path does not exist.

    Example::

        report = validate("flights.parquet", [expect.not_null("carrier")])
        if not report.passed:
            print(report.summary())
    """
    exps = list(expectations)
    for position, exp in enumerate(exps):
        if not isinstance(exp, Expectation):
            raise ValidationError(
                f"expectation {position} must be built with loopml.data.expect; "
                f"got {type(exp).__name__}"
            )
        exp.check_args()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a positive integer; got {batch_size!r}")
    source = open_validation_source(data)
    present = set(source.columns)
    checker = BatchChecker(exps, present)
    if checker.tallies:
        offset = 0
        for frame in source.batches(checker.columns_needed(), batch_size):
            checker.feed(frame, offset)
            offset += len(frame)
    total = source.num_rows
    results = [
        _result(exp, index, source, present, checker, total) for index, exp in enumerate(exps)
    ]
    return ValidationReport(results=results, total_rows=total)


# A check's outcome before it becomes a CheckResult: passed, message, failing rows, examples.
_Verdict = tuple[bool, str, int | None, list[Any]]


def _result(
    exp: Expectation,
    index: int,
    source: ValidationSource,
    present: set[str],
    checker: BatchChecker,
    total: int,
) -> CheckResult:
    passed, message, failing, examples = _verdict(exp, index, source, present, checker, total)
    return CheckResult(
        name=exp.check_name,
        column=exp.subject,
        severity=Severity(exp.severity).value,
        passed=passed,
        failing_rows=failing,
        total_rows=total,
        examples=examples,
        message=message,
    )


def _verdict(
    exp: Expectation,
    index: int,
    source: ValidationSource,
    present: set[str],
    checker: BatchChecker,
    total: int,
) -> _Verdict:
    where = f"column {exp.subject!r}: " if exp.subject else ""
    if isinstance(exp, ExpectCustom):
        where = f"custom check {exp.name!r}: "
    needed = exp.key if isinstance(exp, ExpectUnique) else (exp.columns_read() or ())
    missing = [c for c in needed if c not in present]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        return False, f"{where}column(s) {names} not found in {source.label}", None, []
    if isinstance(exp, ExpectColumns):
        return _columns_verdict(exp, source)
    if isinstance(exp, ExpectRowCount):
        ok = (exp.min is None or total >= exp.min) and (exp.max is None or total <= exp.max)
        return ok, f"expected {_bounds(exp.min, exp.max)} rows, found {total:,}", None, []
    if isinstance(exp, ExpectUnique):
        rows, keys, examples = source.duplicates(exp.key)
        if rows == 0:
            return True, f"{where}expected unique values, all rows pass", 0, []
        found = f"found {_count(rows, 'row')} sharing {_count(keys, 'value')}{_examples(examples)}"
        return False, f"{where}expected unique values, {found}", rows, examples
    tally = checker.tallies[index]
    if isinstance(exp, ExpectFresh):
        return _fresh_verdict(exp, tally, where)
    if tally.problem is not None:
        return False, where + tally.problem, None, []
    if isinstance(exp, ExpectCustom) and tally.returned_false:
        return False, f"{where}expected True, the function returned False", None, []
    expected = _expected(exp)
    if tally.failing == 0:
        return True, f"{where}{expected}, all rows pass", 0, []
    if isinstance(exp, ExpectNotNull):
        return False, f"{where}{expected}, {_null_rows(tally)}", tally.failing, tally.examples
    if isinstance(exp, ExpectCustom):  # examples are whole rows: too long for the message
        found = f"found {_count(tally.failing, 'row')} False (first rows: {_rows(tally)})"
        return False, f"{where}{expected}, {found}", tally.failing, tally.examples
    if isinstance(exp, ExpectColumnType):
        found = f"found {', '.join(sorted(tally.found)) or 'other types'}"
    else:
        found = f"found {_count(tally.failing, 'value')} outside"
    message = f"{where}{expected}, {found}{_examples(tally.examples)}"
    return False, message, tally.failing, tally.examples


def _expected(exp: Expectation) -> str:
    if isinstance(exp, ExpectColumnType):
        return f"expected {exp.dtype}"
    if isinstance(exp, ExpectNotNull):
        return "expected no nulls"
    if isinstance(exp, ExpectBetween):
        return f"expected values {_bounds(exp.min, exp.max)}"
    if isinstance(exp, ExpectAllowedValues):
        return f"expected one of {', '.join(map(repr, exp.values))}"
    return "expected True for every row"


def _columns_verdict(exp: ExpectColumns, source: ValidationSource) -> _Verdict:
    actual = source.columns
    missing = [c for c in exp.required if c not in actual]
    extra = [] if exp.allow_extra else [c for c in actual if c not in exp.required]
    problems = []
    if missing:
        problems.append(f"missing required column(s) {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(map(repr, extra))} (allow_extra=False)")
    if not problems:
        return True, f"all {len(exp.required)} required columns present", None, []
    return False, "; ".join(problems) + f" in {source.label}", None, [*missing, *extra]


def _fresh_verdict(exp: ExpectFresh, tally: Tally, where: str) -> _Verdict:
    if tally.problem is not None:
        return False, where + tally.problem, None, []
    now = pd.Timestamp(exp.now or datetime.now(UTC))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    expected = f"expected the newest value within {exp.max_age} of {now.isoformat()}"
    if tally.newest is None:
        return False, f"{where}{expected}, found no timestamps", None, []
    age = now - tally.newest
    newest = tally.newest.isoformat()
    found = f"found {newest} ({_age(age)} old)"
    ok = age <= exp.max_age_delta
    return ok, f"{where}{expected}, {found}", None, [] if ok else [newest]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _rows(tally: Tally) -> str:
    return ", ".join(str(r) for r in tally.rows)


def _null_rows(tally: Tally) -> str:
    return f"found {_count(tally.failing, 'null value')} (first rows: {_rows(tally)})"


def _age(age: pd.Timedelta) -> str:
    seconds = int(age.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return sign + (" ".join(parts) or "0s")


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low!r} and {high!r}"
    return f">= {low!r}" if low is not None else f"<= {high!r}"


def _examples(examples: list[Any]) -> str:
    return f" (examples: {', '.join(map(repr, examples))})" if examples else ""
