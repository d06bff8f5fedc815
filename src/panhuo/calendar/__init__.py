"""The one trading-calendar service (DESIGN.md section 7): every "trading day" question goes here.

Shanghai Stock Exchange sessions (XSHG) from ``exchange_calendars``, corrected and extended by a
shipped override file (``xshg_overrides.yaml``) and, optionally, the brokerage's own file
(``calendar.override_file`` in panhuo.yaml). Weekend make-up workdays (调休) are never trading days.
Years whose closures are not known (not yet published) are not covered: questions raise CalendarError.
"""

from __future__ import annotations

from panhuo.calendar.overrides import CalendarOverrideError, load_override_file
from panhuo.calendar.service import (
    SHIPPED_OVERRIDE_FILE,
    TradingCalendar,
    YearCoverage,
    build_calendar,
    calendar_for,
    get_calendar,
    shanghai_today,
    years_before,
)

__all__ = [
    "years_before",
    "TradingCalendar",
    "get_calendar",
    "calendar_for",
    "build_calendar",
    "YearCoverage",
    "CalendarOverrideError",
    "load_override_file",
    "SHIPPED_OVERRIDE_FILE",
    "shanghai_today",
]
