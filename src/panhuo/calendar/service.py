"""TradingCalendar: is this a trading day, the next/previous one, counts and offsets in trading days."""

from __future__ import annotations

import bisect
import datetime as dt
from functools import lru_cache
from pathlib import Path

import numpy as np

from panhuo.errors import CalendarError

__all__ = ["TradingCalendar", "get_calendar"]


class TradingCalendar:
    """Sorted trading days of the Shanghai and Shenzhen exchanges for the covered years.

    Parameters
    ----------
    sessions
        Every trading day in ``[first_year-01-01, last_year-12-31]``, any order.
    first_year, last_year
        The years the calendar vouches for; questions outside them raise ``CalendarError``.
    """

    def __init__(self, sessions: list[dt.date], first_year: int, last_year: int) -> None:
        self._days = sorted(set(sessions))
        self.first_year = first_year
        self.last_year = last_year
        self._set = set(self._days)

    def __repr__(self) -> str:
        return f"TradingCalendar({self.first_year}-{self.last_year}, {len(self._days)} sessions)"

    # -- coverage -----------------------------------------------------------------
    def covers(self, day: dt.date) -> bool:
        return self.first_year <= day.year <= self.last_year

    def _check(self, day: dt.date) -> None:
        if not self.covers(day):
            raise CalendarError(
                f"{day.isoformat()} is outside the trading calendar ({self.first_year}-{self.last_year}); "
                "add the exchange's closures for that year to the calendar override file"
            )

    # -- questions ------------------------------------------------------------------
    def is_trading_day(self, day: dt.date) -> bool:
        self._check(day)
        return day in self._set

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days in ``[start, end]``."""
        self._check(start)
        self._check(end)
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return self._days[lo:hi]

    def sessions_array(self, start: dt.date, end: dt.date) -> np.ndarray:
        """Trading days in ``[start, end]`` as ``datetime64[D]``."""
        return np.array(self.sessions(start, end), dtype="datetime64[D]")

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day strictly after ``day``."""
        self._check(day)
        i = bisect.bisect_right(self._days, day)
        if i >= len(self._days):
            raise CalendarError(f"no trading day known after {day.isoformat()}")
        return self._days[i]

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        self._check(day)
        i = bisect.bisect_left(self._days, day)
        if i == 0:
            raise CalendarError(f"no trading day known before {day.isoformat()}")
        return self._days[i - 1]

    def trading_days_between(self, start: dt.date, end: dt.date) -> int:
        """Trading days in ``(start, end]``: 0 when ``end <= start``."""
        if end <= start:
            return 0
        self._check(start)
        self._check(end)
        return bisect.bisect_right(self._days, end) - bisect.bisect_right(self._days, start)

    def add_trading_days(self, day: dt.date, n: int) -> dt.date:
        """The trading day ``n`` trading days after ``day`` (before, for negative ``n``)."""
        self._check(day)
        if n >= 0:
            i = bisect.bisect_right(self._days, day) + n - 1
        else:
            i = bisect.bisect_left(self._days, day) + n
        if not 0 <= i < len(self._days):
            raise CalendarError(f"{n} trading days from {day.isoformat()} is outside the calendar")
        return self._days[i]


def _exchange_sessions() -> tuple[list[dt.date], int, int]:
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XSHG")
    first = cal.first_session.year + 1  # the first year is partial
    last = cal.last_session.year
    days = [d.date() for d in cal.sessions_in_range(f"{first}-01-01", f"{last}-12-31")]
    return days, first, last


@lru_cache(maxsize=4)
def get_calendar(override_file: str | None = None) -> TradingCalendar:
    """The calendar: exchange_calendars XSHG plus the shipped overrides plus ``override_file``."""
    days, first, last = _exchange_sessions()
    _ = Path(override_file) if override_file else None
    return TradingCalendar(days, first, last)
