"""Property tests: offsets and counts are inverse, next/previous are adjacent trading days."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from panhuo.calendar import TradingCalendar, get_calendar

__all__: list[str] = []

CAL: TradingCalendar = get_calendar()
# keep a margin from both ends of the calendar so every step stays inside it
dates = st.dates(min_value=dt.date(CAL.first_year, 3, 1), max_value=dt.date(CAL.last_year, 10, 31))
steps = st.integers(min_value=-30, max_value=30)


@settings(max_examples=300, deadline=None)
@given(day=dates, n=steps)
def test_add_trading_days_and_trading_days_between_are_inverse(day: dt.date, n: int) -> None:
    target = CAL.add_trading_days(day, n)
    assert CAL.is_trading_day(target)
    trades = CAL.is_trading_day(day)
    if n > 0:
        assert target > day
        assert CAL.trading_days_between(day, target) == n
        # and back again: day itself, or the trading day before it when day does not trade
        assert CAL.add_trading_days(target, -n) == (day if trades else CAL.previous_trading_day(day))
    elif n < 0:
        assert target < day
        assert CAL.trading_days_between(target, day) == (-n if trades else -n - 1)
        assert CAL.add_trading_days(target, -n) == (day if trades else CAL.next_trading_day(day))
    else:
        assert target == (day if trades else CAL.previous_trading_day(day))


@settings(max_examples=300, deadline=None)
@given(start=dates, end=dates)
def test_trading_days_between_counts_sessions(start: dt.date, end: dt.date) -> None:
    count = CAL.trading_days_between(start, end)
    if end <= start:
        assert count == 0
        return
    assert count == len(CAL.sessions(start + dt.timedelta(days=1), end))
    if count:
        assert CAL.add_trading_days(start, count) == CAL.sessions(start, end)[-1]


@settings(max_examples=300, deadline=None)
@given(day=dates)
def test_next_and_previous_are_adjacent_trading_days(day: dt.date) -> None:
    nxt, prev = CAL.next_trading_day(day), CAL.previous_trading_day(day)
    assert prev < day < nxt
    assert CAL.is_trading_day(nxt) and CAL.is_trading_day(prev)
    assert nxt.weekday() < 5 and prev.weekday() < 5
    between = CAL.sessions(prev + dt.timedelta(days=1), nxt - dt.timedelta(days=1))
    assert between == ([day] if CAL.is_trading_day(day) else [])
    assert CAL.previous_trading_day(nxt) == (day if CAL.is_trading_day(day) else prev)
    assert CAL.next_trading_day(prev) == (day if CAL.is_trading_day(day) else nxt)


@settings(max_examples=200, deadline=None)
@given(start=dates, end=dates)
def test_sessions_sorted_within_range_and_trading(start: dt.date, end: dt.date) -> None:
    days = CAL.sessions(start, end)
    assert days == sorted(set(days))
    assert all(start <= d <= end for d in days)
    assert all(CAL.is_trading_day(d) and d.weekday() < 5 for d in days)
    assert CAL.sessions_array(start, end).tolist() == days
