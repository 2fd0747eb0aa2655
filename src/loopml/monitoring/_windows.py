"""Window specs: by time (``15m``, ``1h``, ``1d``) or by count (``10000rows``).

Time windows are aligned to the Unix epoch (UTC): window ``i`` of a ``1h`` spec holds the
predictions made from ``i`` hours after 1970-01-01 to the hour after, so every pass (and
every process) puts a prediction in the same window. Count windows number the rows in the
order the monitor reads them (segments in the order they entered the log, rows of a
segment by time): window ``i`` of ``10000rows`` holds rows ``10000*i`` to ``10000*i+9999``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopml.core import ValidationError

__all__ = ["DEFAULT_WINDOW", "WindowSpec", "parse_window"]

DEFAULT_WINDOW = "1h"
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PATTERN = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|rows?)\s*$")
_MIN_MS = 1000  # one second
_MAX_MS = 366 * 86_400_000  # a year
_MAX_ROWS = 100_000_000


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window spec: ``size_ms`` for time windows, ``rows`` for count windows."""

    text: str
    size_ms: int | None = None
    rows: int | None = None

    @property
    def by_time(self) -> bool:
        return self.size_ms is not None

    def time_index(self, ts_ms: int) -> int:
        """The time window holding ``ts_ms``."""
        assert self.size_ms is not None
        return ts_ms // self.size_ms

    def count_index(self, ordinal: int) -> int:
        """The count window holding the ``ordinal``-th row read (from 0)."""
        assert self.rows is not None
        return ordinal // self.rows

    def bounds(self, index: int) -> tuple[int, int]:
        """``[start_ms, end_ms)`` of time window ``index``."""
        assert self.size_ms is not None
        return index * self.size_ms, (index + 1) * self.size_ms


def parse_window(text: str) -> WindowSpec:
    """``"1h"`` -> a one-hour spec, ``"10000rows"`` -> a 10,000-row spec.

    Units: ``s``, ``m``, ``h``, ``d``, ``w`` (1 s to 366 days), ``rows`` (1 to 100
    million). The spec's ``text`` is its canonical form (``"10000rows"``, ``"90m"``).

    Raises:
        ValidationError: the text is not a number followed by one of those units.
    """
    match = _PATTERN.match(text or "")
    if match is None:
        raise ValidationError(
            f"window {text!r} is not a window spec: expected a number and a unit, "
            "like 15m, 1h, 1d, 1w or 10000rows"
        )
    number, unit = int(match.group(1)), match.group(2)
    if unit.startswith("row"):
        if not 1 <= number <= _MAX_ROWS:
            raise ValidationError(f"window {text!r}: rows must be 1 to {_MAX_ROWS:,}")
        return WindowSpec(text=f"{number}rows", rows=number)
    size = number * _UNITS_MS[unit]
    if not _MIN_MS <= size <= _MAX_MS:
        raise ValidationError(f"window {text!r}: a time window must be 1s to 366d long")
    return WindowSpec(text=f"{number}{unit}", size_ms=size)
