"""The validation report: loopml's own record of which checks passed, and why not.

pandera does the checking; this is what users read and what a dataset version
stores. A :class:`ValidationReport` holds one :class:`CheckResult` per
expectation, in declaration order, and is JSON-able through :meth:`to_dict` /
:meth:`from_dict` (exactly round-tripping), renderable as a rich table, and
summarised in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from loopml.core import ValidationError

__all__ = ["MAX_EXAMPLES", "CheckResult", "ValidationReport", "jsonable"]

MAX_EXAMPLES = 5
REPORT_FORMAT = 1
_EXAMPLE_CHARS = 40


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data.

    numpy and pandas scalars are unwrapped, NaN/NA/NaT become None, timestamps
    ISO strings, containers are converted item by item, anything else is ``str``.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.timedelta64):
        value = pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one expectation over the whole data.

    ``failing_rows`` is None for checks about the table rather than its rows
    (columns present, row count, freshness), ``examples`` holds up to five
    offending values (JSON-able) and ``message`` what was expected and found.
    """

    name: str
    column: str | None
    severity: str
    passed: bool
    failing_rows: int | None
    total_rows: int
    examples: list[Any] = field(default_factory=list)
    message: str = ""

    @property
    def failing_fraction(self) -> float | None:
        """``failing_rows / total_rows``, or None when not a row count or there are no rows."""
        if self.failing_rows is None or self.total_rows == 0:
            return None
        return self.failing_rows / self.total_rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` reads back into an equal result."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict` output.

        Raises:
            ValidationError: a key is missing or unknown.
        """
        names = [spec.name for spec in fields(cls)]
        missing = [n for n in names if n not in data]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValidationError(
                f"check result dict must have exactly the keys {', '.join(names)}; "
                f"missing {missing}, unknown {unknown}"
            )
        return cls(**{**data, "examples": list(data["examples"])})


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """Every check's result for one dataset; ``passed`` unless a ``fail`` check failed."""

    results: list[CheckResult]
    total_rows: int

    @property
    def passed(self) -> bool:
        """True when no check of severity ``fail`` failed (warnings do not count)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks of severity ``fail``."""
        return [r for r in self.results if not r.passed and r.severity == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        """The failed checks of severity ``warn``."""
        return [r for r in self.results if not r.passed and r.severity == "warn"]

    def summary(self) -> str:
        """One line: ``"2 checks failed (1 fail, 1 warn) of 9"`` or ``"all 9 checks passed"``."""
        total = len(self.results)
        failed = len(self.failures) + len(self.warnings)
        if failed == 0:
            return f"all {total} check{'' if total == 1 else 's'} passed"
        return (
            f"{failed} check{'' if failed == 1 else 's'} failed "
            f"({len(self.failures)} fail, {len(self.warnings)} warn) of {total}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` turns it back into an equal report."""
        return {
            "format": REPORT_FORMAT,
            "passed": self.passed,
            "total_rows": self.total_rows,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        """Rebuild a report from :meth:`to_dict` output.

        Raises:
            ValidationError: not a report dict, or one of a format this loopml does not read.
        """
        if not isinstance(data, Mapping) or data.get("format") != REPORT_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ValidationError(
                f"validation report dict must have format {REPORT_FORMAT}; got {found!r}"
            )
        return cls(
            results=[CheckResult.from_dict(r) for r in data["results"]],
            total_rows=int(data["total_rows"]),
        )

    def to_table(self) -> Table:
        """A rich table of every failed check (fail and warn), titled by :meth:`summary`."""
        table = Table(title=f"Validation: {self.summary()}", title_justify="left")
        for header in ("check", "column", "severity", "failing rows", "examples", "message"):
            table.add_column(header, overflow="fold")
        for result in self.results:
            if result.passed:
                continue
            style = "red" if result.severity == "fail" else "yellow"
            table.add_row(
                result.name,
                result.column or "-",
                f"[{style}]{result.severity}[/{style}]",
                _rows_cell(result),
                ", ".join(_short(e) for e in result.examples) or "-",
                result.message,
            )
        return table

    def __rich__(self) -> Table:
        return self.to_table()


def _rows_cell(result: CheckResult) -> str:
    fraction = result.failing_fraction
    if result.failing_rows is None:
        return "-"
    if fraction is None:
        return f"{result.failing_rows:,}"
    return f"{result.failing_rows:,} ({fraction:.1%})"


def _short(example: Any) -> str:
    text = repr(example)
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"
