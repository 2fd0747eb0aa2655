"""The cron parser and slot finder: fields, names, aliases, errors and boundaries."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from loopml.core import ValidationError
from loopml.pipelines._cron import latest_slot, next_slot, parse_cron


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_fields_lists_ranges_steps() -> None:
    cron = parse_cron("*/15 9-17/4 1,15 * *")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 13, 17)
    assert cron.days == (1, 15)
    assert cron.months == tuple(range(1, 13))
    assert parse_cron("10-50/10 * * * *").minutes == (10, 20, 30, 40, 50)
    assert parse_cron("5/20 * * * *").minutes == (5, 25, 45)
    assert parse_cron("0 0 * * 7").weekdays == (0,)  # 7 is Sunday too
    assert parse_cron("0 0 * * */2").weekdays == (0, 2, 4, 6)


def test_names_are_case_insensitive() -> None:
    cron = parse_cron("0 12 * JAN-mar,Dec mon-FRI")
    assert cron.months == (1, 2, 3, 12)
    assert cron.weekdays == (1, 2, 3, 4, 5)
    assert parse_cron("0 0 * * sun,sat").weekdays == (0, 6)


@pytest.mark.parametrize(
    ("alias", "same_as"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias: str, same_as: str) -> None:
    a, b = parse_cron(alias), parse_cron(same_as)
    assert (a.minutes, a.hours, a.days, a.months, a.weekdays) == (
        b.minutes,
        b.hours,
        b.days,
        b.months,
        b.weekdays,
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "cron minute field: 61 is out of range 0-59"),
        ("* 24 * * *", "cron hour field: 24 is out of range 0-23"),
        ("* * 0 * *", "cron day-of-month field: 0 is out of range 1-31"),
        ("* * * 13 *", "cron month field: 13 is out of range 1-12"),
        ("* * * * 8", "cron day-of-week field: 8 is out of range 0-7"),
        ("* * * foo *", "cron month field: 'foo' is not a number or a month name"),
        ("* * * * funday", "cron day-of-week field: 'funday' is not a number or a day name"),
        ("x * * * *", "cron minute field: 'x' is not a number"),
        ("*/0 * * * *", "cron minute field: step '0' must be a positive integer"),
        ("*/a * * * *", "cron minute field: step 'a' must be a positive integer"),
        ("30-10 * * * *", "cron minute field: range 30-10 goes backwards"),
        ("1,,2 * * * *", "cron minute field: empty item"),
        ("* * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("@often", "unknown alias"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 4,6,9,11 *", "never matches"),
    ],
)
def test_errors_name_the_field_and_value(expr: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        parse_cron(expr)


def test_latest_slot_includes_the_current_minute() -> None:
    assert latest_slot("*/15 * * * *", at(2026, 11, 23, 10, 15, 59)) == at(2026, 11, 23, 10, 15)
    assert latest_slot("*/15 * * * *", at(2026, 11, 23, 10, 14, 59)) == at(2026, 11, 23, 10, 0)
    assert next_slot("*/15 * * * *", at(2026, 11, 23, 10, 15)) == at(2026, 11, 23, 10, 30)


def test_slots_across_month_and_year_boundaries() -> None:
    assert next_slot("0 0 1 * *", at(2026, 12, 31, 23, 59)) == at(2027, 1, 1)
    assert latest_slot("0 0 1 * *", at(2027, 1, 1, 0, 0, 30)) == at(2027, 1, 1)
    assert latest_slot("59 23 31 * *", at(2027, 3, 15)) == at(2027, 1, 31, 23, 59)
    assert next_slot("59 23 31 * *", at(2027, 1, 31, 23, 59)) == at(2027, 3, 31, 23, 59)
    assert next_slot("@yearly", at(2026, 6, 1)) == at(2027, 1, 1)
    assert latest_slot("@yearly", at(2026, 6, 1)) == at(2026, 1, 1)
    assert latest_slot("0 6 * jul *", at(2027, 2, 1)) == at(2026, 7, 31, 6, 0)


def test_leap_day() -> None:
    assert next_slot("0 0 29 2 *", at(2025, 1, 1)) == at(2028, 2, 29)
    assert latest_slot("0 0 29 2 *", at(2027, 12, 31)) == at(2024, 2, 29)
    assert next_slot("0 0 29 2 *", at(2096, 3, 1)) == at(2104, 2, 29)  # 2100 is no leap year


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: the 13th OR any Friday (Vixie cron). 2027-01-01 is a Friday.
    assert next_slot("0 9 13 * fri", at(2026, 12, 31, 12)) == at(2027, 1, 1, 9)
    assert next_slot("0 9 13 * fri", at(2027, 1, 8, 10)) == at(2027, 1, 13, 9)
    # One field a star: both must match, so the star field means "any".
    assert next_slot("0 9 13 * *", at(2027, 1, 1)) == at(2027, 1, 13, 9)
    assert next_slot("0 9 * * fri", at(2027, 1, 2)) == at(2027, 1, 8, 9)
    # A starred step on day-of-month combines with day-of-week by AND: odd Mondays.
    assert next_slot("0 0 */2 * mon", at(2027, 1, 1)) == at(2027, 1, 11)


def test_weekday_slots() -> None:
    # 2027-01-02 is a Saturday; the latest weekday noon before it is Friday's.
    assert latest_slot("0 12 * * mon-fri", at(2027, 1, 3, 23)) == at(2027, 1, 1, 12)
    assert next_slot("@weekly", at(2027, 1, 1)) == at(2027, 1, 3)


def test_naive_and_other_zones_are_utc() -> None:
    naive = dt.datetime(2026, 11, 23, 10, 7)
    assert latest_slot("*/5 * * * *", naive) == at(2026, 11, 23, 10, 5)
    plus_two = dt.datetime(2026, 11, 23, 12, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert latest_slot("*/5 * * * *", plus_two) == at(2026, 11, 23, 10, 5)


@pytest.mark.parametrize(
    "expr",
    ["*/7 */5 * * *", "0 0 13 * fri", "15 4 1-7 * mon", "*/13 3 */3 2,8 *", "0 0 29 2 *"],
)
def test_slots_agree_with_matches(expr: str) -> None:
    """next/latest agree with a brute-force check of ``matches`` around random moments."""
    cron = parse_cron(expr)
    rng = random.Random(expr)
    for _ in range(20):
        moment = at(2026, 1, 1) + dt.timedelta(minutes=rng.randrange(4 * 366 * 24 * 60))
        after, before = next_slot(cron, moment), latest_slot(cron, moment)
        assert cron.matches(after) and cron.matches(before)
        assert before <= moment < after
        if after - before < dt.timedelta(days=3):  # nothing matches strictly between
            step = before + dt.timedelta(minutes=1)
            while step < after:
                assert not cron.matches(step)
                step += dt.timedelta(minutes=1)


def test_non_ascii_digits_are_a_clear_error() -> None:
    from loopml.core import ValidationError
    from loopml.pipelines._cron import parse_cron

    with pytest.raises(ValidationError, match="minute"):
        parse_cron("² * * * *")
