"""The one trading-calendar service (DESIGN.md section 7): every "trading day" question goes here.

Shanghai Stock Exchange sessions (XSHG) from ``exchange_calendars``, corrected and extended by a
shipped override file (``xshg_overrides.yaml``) and, optionally, the brokerage's own file
(``calendar.override_file`` in panhuo.yaml). Weekend make-up workdays (调休) are never trading days.
"""

from __future__ import annotations

from panhuo.calendar.service import TradingCalendar, get_calendar

__all__ = ["TradingCalendar", "get_calendar"]
