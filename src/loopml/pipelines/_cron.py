"""A small 5-field cron parser and slot finder, in UTC.

Written here rather than taken from croniter so that schedules depend only on what
loopml tests: the five classic fields (minute hour day-of-month month day-of-week),
``*``, lists, ranges, steps, month and day names, and the ``@hourly``-style aliases.

Day-of-month and day-of-week combine as in Vixie cron (the cron on Linux): when both
fields are restricted (neither starts with ``*``) a day matches if *either* does;
otherwise both must match. Finding a slot walks months, then days, then picks the
hour and minute from sorted sets, so it never scans minute by minute.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import functools
from dataclasses import dataclass

from loopml.core import ValidationError

__all__ = ["Cron", "latest_slot", "next_slot", "parse_cron"]

UTC = dt.UTC
# A slot search gives up after this many years: enough for Feb 29 on a given weekday.
_HORIZON_YEARS = 30
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {k.lower(): v for k, v in _MONTHS.items()}),
    _Field("day-of-week", 0, 7, _DAYS),  # 7 is Sunday too
)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression: the allowed values of each field, sorted."""

    expr: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    day_star: bool
    weekday_star: bool

    def day_matches(self, day: dt.date) -> bool:
        """Whether cron runs on ``day`` at all (month, day of month, day of week)."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def matches(self, moment: dt.datetime) -> bool:
        """Whether the minute holding ``moment`` (UTC) is a slot."""
        moment = _utc(moment)
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and self.day_matches(moment.date())
        )


def _number(field: _Field, text: str) -> int:
    value = field.names.get(text.lower()) if field.names else None
    if value is not None:
        return value
    if not (text.isascii() and text.isdigit()):
        kind = "a number" if not field.names else f"a number or a {field.name.split('-')[0]} name"
        raise ValidationError(f"cron {field.name} field: {text!r} is not {kind}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValidationError(
            f"cron {field.name} field: {value} is out of range {field.low}-{field.high}"
        )
    return value


def _parse_field(field: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValidationError(f"cron {field.name} field: empty item in {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise ValidationError(
                    f"cron {field.name} field: step {step_text!r} must be a positive integer"
                )
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _number(field, start), _number(field, end)
            if low > high:
                raise ValidationError(f"cron {field.name} field: range {base} goes backwards")
        else:
            low = _number(field, base)
            high = field.high if slash else low  # "5/15" means 5-59/15, as in Vixie cron
        values.update(range(low, high + 1, step))
    return values


@functools.lru_cache(maxsize=256)
def parse_cron(expr: str) -> Cron:
    """Parse a cron expression (5 fields or an ``@alias``).

    Raises:
        ValidationError: naming the field and the bad value, or an expression that
            can never match (such as February 30).
    """
    if not isinstance(expr, str):
        raise ValidationError(f"cron expression must be a string; got {expr!r}")
    text = _ALIASES.get(expr.strip().lower(), expr)
    if text.strip().startswith("@"):
        raise ValidationError(
            f"cron expression {expr!r}: unknown alias; expected one of {', '.join(_ALIASES)}"
        )
    parts = text.split()
    if len(parts) != 5:
        raise ValidationError(
            f"cron expression {expr!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or an @alias, got {len(parts)}"
        )
    sets = [_parse_field(field, part) for field, part in zip(_FIELDS, parts, strict=True)]
    weekdays = {d % 7 for d in sets[4]}
    cron = Cron(
        expr=expr,
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=tuple(sorted(sets[2])),
        months=tuple(sorted(sets[3])),
        weekdays=tuple(sorted(weekdays)),
        day_star=parts[2].startswith("*"),
        weekday_star=parts[4].startswith("*"),
    )
    # When the day of month alone decides, a day that no chosen month has never comes.
    if cron.weekday_star and not any(
        day <= calendar.monthrange(2000, month)[1] for month in cron.months for day in cron.days
    ):
        raise ValidationError(f"cron expression {expr!r} never matches: no such day in its months")
    return cron


def _utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _as_cron(expr: str | Cron) -> Cron:
    return expr if isinstance(expr, Cron) else parse_cron(expr)


def _first_time(cron: Cron, hour: int, minute: int) -> dt.time | None:
    """The earliest (hour, minute) slot at or after ``hour:minute`` on a matching day."""
    for h in cron.hours[bisect.bisect_left(cron.hours, hour) :]:
        i = bisect.bisect_left(cron.minutes, minute) if h == hour else 0
        if i < len(cron.minutes):
            return dt.time(h, cron.minutes[i])
    return None


def _last_time(cron: Cron, hour: int, minute: int) -> dt.time | None:
    """The latest (hour, minute) slot at or before ``hour:minute`` on a matching day."""
    for h in reversed(cron.hours[: bisect.bisect_right(cron.hours, hour)]):
        i = bisect.bisect_right(cron.minutes, minute) if h == hour else len(cron.minutes)
        if i > 0:
            return dt.time(h, cron.minutes[i - 1])
    return None


def _never(cron: Cron) -> ValidationError:
    return ValidationError(
        f"cron expression {cron.expr!r} has no slot within {_HORIZON_YEARS} years"
    )


def next_slot(expr: str | Cron, after: dt.datetime) -> dt.datetime:
    """The first slot strictly after ``after``, as an aware UTC datetime."""
    cron = _as_cron(expr)
    start = _utc(after).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day, hour, minute = start.date(), start.hour, start.minute
    while day.year <= start.year + _HORIZON_YEARS:
        if day.month not in cron.months:
            day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        elif cron.day_matches(day) and (found := _first_time(cron, hour, minute)) is not None:
            return dt.datetime.combine(day, found, UTC)
        else:
            day += dt.timedelta(days=1)
        hour = minute = 0
    raise _never(cron)


def latest_slot(expr: str | Cron, at: dt.datetime) -> dt.datetime:
    """The latest slot at or before ``at`` (the minute holding ``at`` counts)."""
    cron = _as_cron(expr)
    end = _utc(at).replace(second=0, microsecond=0)
    day, hour, minute = end.date(), end.hour, end.minute
    while day.year >= end.year - _HORIZON_YEARS:
        if day.month not in cron.months:
            day = day.replace(day=1) - dt.timedelta(days=1)
        elif cron.day_matches(day) and (found := _last_time(cron, hour, minute)) is not None:
            return dt.datetime.combine(day, found, UTC)
        else:
            day -= dt.timedelta(days=1)
        hour, minute = 23, 59
    raise _never(cron)
