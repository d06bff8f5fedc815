"""The trading calendar against the exchanges' published closures (SSE notices for 2024-2026)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from panhuo.calendar import TradingCalendar
from panhuo.errors import CalendarError

__all__: list[str] = []

D = dt.date


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


# Weekday closures as published in SSE's 《关于YYYY年部分节假日休市安排的通知》.
OFFICIAL_WEEKDAY_CLOSURES = {
    2024: [
        D(2024, 1, 1),
        D(2024, 2, 9), D(2024, 2, 12), D(2024, 2, 13), D(2024, 2, 14), D(2024, 2, 15), D(2024, 2, 16),
        D(2024, 4, 4), D(2024, 4, 5),
        D(2024, 5, 1), D(2024, 5, 2), D(2024, 5, 3),
        D(2024, 6, 10),
        D(2024, 9, 16), D(2024, 9, 17),
        D(2024, 10, 1), D(2024, 10, 2), D(2024, 10, 3), D(2024, 10, 4), D(2024, 10, 7),
    ],  # fmt: skip
    2025: [
        D(2025, 1, 1),
        D(2025, 1, 28), D(2025, 1, 29), D(2025, 1, 30), D(2025, 1, 31), D(2025, 2, 3), D(2025, 2, 4),
        D(2025, 4, 4),
        D(2025, 5, 1), D(2025, 5, 2), D(2025, 5, 5),
        D(2025, 6, 2),
        D(2025, 10, 1), D(2025, 10, 2), D(2025, 10, 3), D(2025, 10, 6), D(2025, 10, 7), D(2025, 10, 8),
    ],  # fmt: skip
    2026: [
        D(2026, 1, 1), D(2026, 1, 2),
        D(2026, 2, 16), D(2026, 2, 17), D(2026, 2, 18), D(2026, 2, 19), D(2026, 2, 20), D(2026, 2, 23),
        D(2026, 4, 6),
        D(2026, 5, 1), D(2026, 5, 4), D(2026, 5, 5),
        D(2026, 6, 19),
        D(2026, 9, 25),
        D(2026, 10, 1), D(2026, 10, 2), D(2026, 10, 5), D(2026, 10, 6), D(2026, 10, 7),
    ],  # fmt: skip
}
OFFICIAL_TRADING_DAYS = {2024: 242, 2025: 243, 2026: 242}

# Every day of the closure, weekends inside it included, and the trading days around it.
CLOSED_SPANS = {
    "spring festival 2024": (_span(D(2024, 2, 9), D(2024, 2, 18)), D(2024, 2, 8), D(2024, 2, 19)),
    "national day 2024": (_span(D(2024, 10, 1), D(2024, 10, 7)), D(2024, 9, 30), D(2024, 10, 8)),
    "spring festival 2025": (_span(D(2025, 1, 28), D(2025, 2, 4)), D(2025, 1, 27), D(2025, 2, 5)),
    "national day 2025": (_span(D(2025, 10, 1), D(2025, 10, 8)), D(2025, 9, 30), D(2025, 10, 9)),
}

# Weekend make-up workdays (调休上班日): official workdays, never trading days.
MAKE_UP_WORKDAYS = [
    D(2024, 2, 4), D(2024, 2, 18), D(2024, 4, 7), D(2024, 4, 28), D(2024, 5, 11), D(2024, 9, 14),
    D(2024, 9, 29), D(2024, 10, 12),
    D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27), D(2025, 9, 28), D(2025, 10, 11),
    D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10),
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(CLOSED_SPANS))
def test_spring_festival_and_national_day_every_day_closed(cal: TradingCalendar, name: str) -> None:
    days, before, after = CLOSED_SPANS[name]
    for day in days:
        assert not cal.is_trading_day(day), day
    assert cal.is_trading_day(before) and cal.is_trading_day(after)
    assert cal.next_trading_day(before) == after
    assert cal.previous_trading_day(after) == before
    assert cal.sessions(days[0], days[-1]) == []
    assert cal.trading_days_between(before, after) == 1


def test_2024_new_years_eve_closure_that_chinese_calendar_calls_a_workday(cal: TradingCalendar) -> None:
    assert not cal.is_trading_day(D(2024, 2, 9))  # 除夕, Friday: exchange closed


@pytest.mark.parametrize("day", MAKE_UP_WORKDAYS, ids=str)
def test_make_up_workdays_are_not_trading_days(cal: TradingCalendar, day: dt.date) -> None:
    assert day.weekday() >= 5
    assert not cal.is_trading_day(day)


@pytest.mark.parametrize("year", sorted(OFFICIAL_WEEKDAY_CLOSURES))
def test_whole_year_matches_the_exchange_notice(cal: TradingCalendar, year: int) -> None:
    assert cal.closures(year) == OFFICIAL_WEEKDAY_CLOSURES[year]
    assert len(cal.sessions(D(year, 1, 1), D(year, 12, 31))) == OFFICIAL_TRADING_DAYS[year]
    cov = cal.coverage(year)
    assert cov.covered and cov.trading_days == OFFICIAL_TRADING_DAYS[year]
    assert any(f"关于{year}年部分节假日休市安排的通知" in s for s in cov.sources)
    assert all(d.weekday() < 5 for d in cal.sessions(D(year, 1, 1), D(year, 12, 31)))


def test_2027_is_not_covered(cal: TradingCalendar) -> None:
    assert cal.last_year == 2026
    assert not cal.is_covered_year(2027)
    assert not cal.coverage(2027).covered
    for question in (
        lambda: cal.is_trading_day(D(2027, 1, 4)),
        lambda: cal.sessions(D(2026, 12, 1), D(2027, 1, 31)),
        lambda: cal.next_trading_day(D(2026, 12, 31)),
        lambda: cal.add_trading_days(D(2026, 12, 30), 5),
        lambda: cal.trading_days_between(D(2026, 12, 1), D(2027, 1, 5)),
        lambda: cal.closures(2027),
    ):
        with pytest.raises(CalendarError):
            question()


def test_first_year_is_fixed_and_has_history_for_the_three_year_rule(cal: TradingCalendar) -> None:
    assert cal.first_year == 2005
    with pytest.raises(CalendarError):
        cal.is_trading_day(D(2004, 12, 31))


def test_offsets_and_counts(cal: TradingCalendar) -> None:
    assert cal.add_trading_days(D(2025, 9, 30), 1) == D(2025, 10, 9)
    assert cal.add_trading_days(D(2025, 10, 9), -1) == D(2025, 9, 30)
    assert cal.add_trading_days(D(2025, 10, 4), 0) == D(2025, 9, 30)  # not a trading day: the one before
    assert cal.add_trading_days(D(2025, 10, 9), 0) == D(2025, 10, 9)
    assert cal.trading_days_between(D(2024, 12, 31), D(2025, 12, 31)) == 243
    assert cal.trading_days_between(D(2025, 3, 1), D(2025, 3, 1)) == 0
    arr = cal.sessions_array(D(2025, 1, 1), D(2025, 1, 10))
    assert arr.dtype == np.dtype("datetime64[D]")
    assert arr.tolist() == [D(2025, 1, 2), D(2025, 1, 3), D(2025, 1, 6), D(2025, 1, 7), D(2025, 1, 8),
                            D(2025, 1, 9), D(2025, 1, 10)]  # fmt: skip


def test_years_before(cal: TradingCalendar) -> None:
    assert cal.years_before(D(2026, 11, 25), 3) == D(2023, 11, 25)
    assert cal.years_before(D(2024, 2, 29), 3) == D(2021, 2, 28)
    with pytest.raises(CalendarError):
        cal.years_before(D(2027, 1, 1), 3)


def test_constructor_refuses_weekend_sessions() -> None:
    with pytest.raises(CalendarError, match="weekend"):
        TradingCalendar([D(2025, 9, 28)], 2025, 2025)
    small = TradingCalendar([D(2025, 1, 3), D(2025, 1, 2), D(2030, 1, 2)], 2025, 2025)
    assert small.sessions(D(2025, 1, 1), D(2025, 12, 31)) == [D(2025, 1, 2), D(2025, 1, 3)]
    assert small.coverage(2025).trading_days == 2
