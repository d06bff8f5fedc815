"""TradingCalendar: is this a trading day, the next/previous one, counts and offsets in trading days.

The calendar is built from three layers, per year:

1. ``exchange_calendars`` XSHG (Shanghai; Shenzhen closes on the same days), for the years its
   hard-coded holiday list covers;
2. the override file shipped with panhuo (``xshg_overrides.yaml``): corrections citing the
   exchange notice, and whole years exchange_calendars does not cover yet;
3. the brokerage's own override file (``calendar.override_file`` in panhuo.yaml), same format.

A year is *covered* when one of the layers gives its full list of closures; a question about any
other year raises ``CalendarError`` rather than guessing. Weekends are never trading days (weekend
make-up workdays 调休 included). Dates are exchange dates in Asia/Shanghai; nothing here touches the
network.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from panhuo.calendar.overrides import CalendarOverrideError, OverrideFile, load_override_file
from panhuo.errors import CalendarError

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = [
    "TIMEZONE",
    "SHIPPED_OVERRIDE_FILE",
    "YearCoverage",
    "TradingCalendar",
    "build_calendar",
    "get_calendar",
    "calendar_for",
    "shanghai_today",
    "years_before",
]

TIMEZONE = ZoneInfo("Asia/Shanghai")
SHIPPED_OVERRIDE_FILE = Path(__file__).with_name("xshg_overrides.yaml")
_SHIPPED_LABEL = "panhuo xshg_overrides.yaml"
# exchange_calendars' XSHG list starts in 1999; panhuo needs a fixed, ample history (the dormant rule
# looks back three years), not one that moves with today's date.
_FIRST_YEAR = 2005


def shanghai_today() -> dt.date:
    """Today's date in Asia/Shanghai (the exchanges' date), whatever the machine's time zone."""
    return dt.datetime.now(TIMEZONE).date()


def _weekdays(year: int) -> list[dt.date]:
    day = dt.date(year, 1, 1)
    out: list[dt.date] = []
    while day.year == year:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


@dataclass(frozen=True)
class YearCoverage:
    """Where one year's trading days come from.

    ``base`` is the layer that gives the full list of closures (exchange_calendars or an override
    file); ``sources`` the exchange notices cited for the year; ``changes`` the corrections applied
    on top of the base; ``notes`` anything worth a look (an override that changed nothing).
    ``closures`` are the weekday closures (weekends are always closed and not listed).
    """

    year: int
    covered: bool
    base: str | None = None
    sources: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    closures: tuple[dt.date, ...] = ()
    trading_days: int | None = None


class TradingCalendar:
    """Sorted trading days of the Shanghai and Shenzhen exchanges for the covered years.

    Parameters
    ----------
    sessions
        Every trading day in ``[first_year-01-01, last_year-12-31]``, any order. Days outside the
        covered years are ignored; a Saturday or Sunday is refused.
    first_year, last_year
        The years the calendar vouches for; questions outside them raise ``CalendarError``.
    coverage
        Optional provenance per year (see ``YearCoverage``), as ``build_calendar`` records it.
    """

    def __init__(
        self,
        sessions: Iterable[dt.date],
        first_year: int,
        last_year: int,
        *,
        coverage: Mapping[int, YearCoverage] | None = None,
    ) -> None:
        if last_year < first_year:
            raise CalendarError(f"calendar years {first_year}-{last_year} are empty")
        days = sorted({d for d in sessions if first_year <= d.year <= last_year})
        weekend = [d for d in days if d.weekday() >= 5]
        if weekend:
            raise CalendarError(
                f"{weekend[0].isoformat()} is a weekend day: weekends (make-up workdays 调休 included) "
                "are never trading days"
            )
        self._days = days
        self.first_year = first_year
        self.last_year = last_year
        self._set = frozenset(days)
        self._coverage = dict(coverage or {})

    def __repr__(self) -> str:
        return f"TradingCalendar({self.first_year}-{self.last_year}, {len(self._days)} sessions)"

    # -- coverage -----------------------------------------------------------------
    def covers(self, day: dt.date) -> bool:
        return self.first_year <= day.year <= self.last_year

    def is_covered_year(self, year: int) -> bool:
        """Whether every day of ``year`` can be answered (the exchange's closures are known)."""
        return self.first_year <= year <= self.last_year

    def _check(self, day: dt.date) -> None:
        if not self.covers(day):
            raise CalendarError(
                f"{day.isoformat()} is outside the trading calendar ({self.first_year}-{self.last_year}); "
                "add the exchange's closures for that year to the calendar override file"
            )

    def coverage(self, year: int) -> YearCoverage:
        """Whether ``year`` is covered, from which source, its closures and count of trading days."""
        if not self.is_covered_year(year):
            return YearCoverage(year=year, covered=False)
        known = self._coverage.get(year)
        if known is not None:
            return known
        closures = tuple(self.closures(year))
        return YearCoverage(
            year=year,
            covered=True,
            base="sessions given to TradingCalendar",
            closures=closures,
            trading_days=len(_weekdays(year)) - len(closures),
        )

    def closures(self, year: int) -> list[dt.date]:
        """The weekday closures (holidays) of a covered year; weekends are always closed."""
        self._check(dt.date(year, 1, 1))
        return [d for d in _weekdays(year) if d not in self._set]

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
            raise CalendarError(
                f"no trading day known after {day.isoformat()}: the calendar ends with {self.last_year}"
            )
        return self._days[i]

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        self._check(day)
        i = bisect.bisect_left(self._days, day)
        if i == 0:
            raise CalendarError(
                f"no trading day known before {day.isoformat()}: the calendar starts with {self.first_year}"
            )
        return self._days[i - 1]

    def trading_days_between(self, start: dt.date, end: dt.date) -> int:
        """Trading days in ``(start, end]``: 0 when ``end <= start``."""
        if end <= start:
            return 0
        self._check(start)
        self._check(end)
        return bisect.bisect_right(self._days, end) - bisect.bisect_right(self._days, start)

    def add_trading_days(self, day: dt.date, n: int) -> dt.date:
        """The trading day ``n`` trading days after ``day`` (before, for negative ``n``).

        ``n == 0`` gives ``day`` itself when it is a trading day, else the trading day before it.
        """
        self._check(day)
        if n >= 0:
            i = bisect.bisect_right(self._days, day) + n - 1
        else:
            i = bisect.bisect_left(self._days, day) + n
        if not 0 <= i < len(self._days):
            raise CalendarError(
                f"{n} trading days from {day.isoformat()} is outside the trading calendar "
                f"({self.first_year}-{self.last_year}); add the exchange's closures for that year to the "
                "calendar override file"
            )
        return self._days[i]

    def years_before(self, day: dt.date, n: int) -> dt.date:
        """The same calendar date ``n`` years before ``day`` (29 February falls back to the 28th).

        For rules counted in years, like the dormant rule's "no trade in the last three years":
        an account whose last trade is before ``years_before(as_of, 3)`` has not traded for three
        years. ``day`` must be in a covered year.
        """
        self._check(day)
        if n < 0:
            raise CalendarError(f"years_before needs n >= 0, got {n}")
        return years_before(day, n)


def years_before(day: dt.date, n: int) -> dt.date:
    """The same calendar date ``n`` years before ``day``; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - n)
    except ValueError:  # 29 February in a year that has none
        return dt.date(day.year - n, 2, 28)


# -- building ------------------------------------------------------------------------
@dataclass
class _YearState:
    closures: set[dt.date]
    base: str
    origin: str
    sources: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _exchange_closures() -> tuple[dict[int, set[dt.date]], str]:
    """Weekday closures per fully covered year from exchange_calendars XSHG, and a label."""
    import exchange_calendars as xcals

    label = f"exchange_calendars {xcals.__version__} (XSHG)"
    with warnings.catch_warnings():  # pandas deprecation noise from inside exchange_calendars
        warnings.simplefilter("ignore", DeprecationWarning)
        cal = xcals.get_calendar("XSHG", start=f"{_FIRST_YEAR}-01-01")
        last_session = cal.last_session.date()
        first = max(_FIRST_YEAR, cal.first_session.year)
        sessions = [d.date() for d in cal.sessions]
    last = last_session.year
    if last_session < dt.date(last, 12, 24):  # a partial last year (never the case for XSHG so far)
        last -= 1
    days = {d for d in sessions if first <= d.year <= last}
    closures = {y: {d for d in _weekdays(y) if d not in days} for y in range(first, last + 1)}
    return closures, label


def _apply(states: dict[int, _YearState], layer: OverrideFile, label: str, below: str) -> None:
    for year, entry in sorted(layer.years.items()):
        where = f"{layer.path}: field years.{year}"
        state = states.get(year)
        if entry.closures is not None:
            state = _YearState(
                closures=set(entry.closures),
                base=f"{label} (full list of closures)",
                origin=where,
            )
            states[year] = state
        elif state is None:
            raise CalendarOverrideError(
                f"{where}: {year} is not covered by {below}; add_closures/remove_closures need a covered "
                f"year, give the full list of {year}'s weekday closures as `closures`"
            )
        state.sources.append(f"{entry.source} ({label})" + (f" {entry.url}" if entry.url else ""))
        for day in entry.add_closures:
            if day in state.closures:
                state.notes.append(f"{label}: add_closures {day.isoformat()} was already a closure")
            else:
                state.closures.add(day)
                state.changes.append(f"closed {day.isoformat()} ({label})")
        for day in entry.remove_closures:
            if day not in state.closures:
                state.notes.append(f"{label}: remove_closures {day.isoformat()} was already a trading day")
            else:
                state.closures.discard(day)
                state.changes.append(f"opened {day.isoformat()} ({label})")
        if entry.trading_days is not None:
            count = len(_weekdays(year)) - len(state.closures)
            if count != entry.trading_days:
                raise CalendarOverrideError(
                    f"{where}.trading_days: {year} has {count} trading days here, the file expects "
                    f"{entry.trading_days} ({entry.source}); the data below it ({state.base}) differs from "
                    "the notice: correct the year with add_closures/remove_closures"
                )


def build_calendar(*override_files: str | os.PathLike[str], include_shipped: bool = True) -> TradingCalendar:
    """Build a calendar (uncached): exchange_calendars, the shipped overrides, then ``override_files``."""
    exchange, xlabel = _exchange_closures()
    states = {y: _YearState(closures=c, base=xlabel, origin=xlabel) for y, c in exchange.items()}
    below = xlabel
    layers: list[tuple[OverrideFile, str]] = []
    if include_shipped:
        layers.append((load_override_file(SHIPPED_OVERRIDE_FILE), _SHIPPED_LABEL))
    for f in override_files:
        layers.append((load_override_file(f), str(f)))
    for layer, label in layers:
        _apply(states, layer, label, below)
        below = f"{below} or {label}"
    if not states:
        raise CalendarError(f"{xlabel} gave no full year of sessions")
    years = sorted(states)
    for prev, year in zip(years, years[1:], strict=False):
        if year != prev + 1:
            raise CalendarOverrideError(
                f"{states[year].origin}: {year} is given but {prev + 1} is not covered; covered years must "
                f"follow one another, add {prev + 1} first"
            )
    coverage: dict[int, YearCoverage] = {}
    sessions: list[dt.date] = []
    for year in years:
        state = states[year]
        open_days = [d for d in _weekdays(year) if d not in state.closures]
        sessions.extend(open_days)
        coverage[year] = YearCoverage(
            year=year,
            covered=True,
            base=state.base,
            sources=tuple(state.sources),
            changes=tuple(state.changes),
            notes=tuple(state.notes),
            closures=tuple(sorted(state.closures)),
            trading_days=len(open_days),
        )
    return TradingCalendar(sessions, years[0], years[-1], coverage=coverage)


@lru_cache(maxsize=4)
def get_calendar(override_file: str | os.PathLike[str] | None = None) -> TradingCalendar:
    """The calendar: exchange_calendars XSHG plus the shipped overrides plus ``override_file``.

    Cached per ``override_file`` (a relative path is taken from the current directory; see
    ``calendar_for`` for the workspace's file). Raises ``CalendarOverrideError`` (a
    ``CalendarError`` and a ``ConfigError``) naming the file and field when an override is invalid.
    """
    if override_file is None:
        return build_calendar()
    return build_calendar(override_file)


def calendar_for(workspace: Workspace) -> TradingCalendar:
    """The calendar of a workspace: its ``calendar.override_file`` (relative to the workspace) merged in."""
    name = workspace.settings.calendar.override_file
    if not name:
        return get_calendar()
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = workspace.root / path
    return get_calendar(str(path.resolve()))

