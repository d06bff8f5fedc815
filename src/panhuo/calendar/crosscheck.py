"""Second opinion on a year of the trading calendar from ``chinesecalendar`` (State Council holidays).

A trading day is, to a first approximation, ``chinese_calendar.is_workday(d) and d.weekday() < 5``;
the exchanges sometimes close on extra days (e.g. 除夕 2024-02-09). Differences are shown by
``panhuo calendar check`` for a person to judge; they never change the calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from panhuo.calendar.service import TradingCalendar

__all__ = ["Difference", "HolidayRun", "chinese_calendar_differences", "holiday_runs"]


@dataclass(frozen=True)
class Difference:
    """A weekday where the trading calendar and chinesecalendar disagree."""

    day: dt.date
    trading_day: bool  # what the trading calendar says
    reason: str


@dataclass(frozen=True)
class HolidayRun:
    """Consecutive closed days (weekends inside the run included) around one or more weekday closures."""

    first: dt.date
    last: dt.date
    weekdays: int
    name: str


def _holiday_name(day: dt.date) -> str | None:
    try:
        import chinese_calendar as cc

        on_holiday, name = cc.get_holiday_detail(day)
    except (ImportError, NotImplementedError):
        return None
    if not on_holiday or name is None:
        return None
    for holiday in cc.Holiday:
        if holiday.value == name:
            return f"{holiday.chinese} {name}"
    return str(name)


def _holiday_weekend(day: dt.date, year: int) -> bool:
    if day.year != year or day.weekday() < 5:
        return False
    try:
        import chinese_calendar as cc

        return bool(cc.is_holiday(day)) and cc.get_holiday_detail(day)[1] is not None
    except (ImportError, NotImplementedError):
        return False


def chinese_calendar_differences(cal: TradingCalendar, year: int) -> list[Difference] | None:
    """Weekdays of ``year`` where the calendar and chinesecalendar disagree; ``None`` if it lacks the year."""
    try:
        import chinese_calendar as cc

        cc.is_workday(dt.date(year, 1, 1))
    except (ImportError, NotImplementedError):
        return None
    closures = set(cal.closures(year))
    out: list[Difference] = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        if day.weekday() < 5:
            workday = bool(cc.is_workday(day))
            closed = day in closures
            if workday and closed:
                out.append(Difference(day, False, "closed by the exchange, a workday per the State Council"))
            elif not workday and not closed:
                out.append(Difference(day, True, "trading day here, a public holiday per the State Council"))
        day += dt.timedelta(days=1)
    return out


def holiday_runs(cal: TradingCalendar, year: int) -> list[HolidayRun]:
    """The year's weekday closures grouped into runs (a weekend between closures joins them), named."""
    runs: list[list[dt.date]] = []
    for day in cal.closures(year):
        if runs:
            gap = [runs[-1][-1] + dt.timedelta(days=k) for k in range(1, (day - runs[-1][-1]).days)]
            if all(g.weekday() >= 5 for g in gap):
                runs[-1].append(day)
                continue
        runs.append([day])
    out: list[HolidayRun] = []
    for run in runs:
        first, last = run[0], run[-1]
        # extend over adjacent weekend days of the public holiday (not over make-up workdays 调休),
        # so a run reads like the exchanges' notice: 春节 2024-02-09 .. 2024-02-17
        while _holiday_weekend(first - dt.timedelta(days=1), year):
            first -= dt.timedelta(days=1)
        while _holiday_weekend(last + dt.timedelta(days=1), year):
            last += dt.timedelta(days=1)
        names = [n for n in (_holiday_name(d) for d in run) if n]
        name = max(set(names), key=names.count) if names else "exchange closure"
        if names and len(names) < len(run):
            name += " (+ exchange-only closure)"
        out.append(HolidayRun(first=first, last=last, weekdays=len(run), name=name))
    return out
