"""Fixtures of the trading-calendar tests: the default calendar and a writer for override files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panhuo.calendar import TradingCalendar, get_calendar

__all__ = ["cal", "write_override", "fresh_cache"]


@pytest.fixture(scope="session")
def cal() -> TradingCalendar:
    """exchange_calendars + the shipped overrides, no brokerage file."""
    return get_calendar()


@pytest.fixture
def write_override(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented override file into tmp_path and return its path."""

    def write(text: str, name: str = "closures.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """Clear get_calendar's cache around a test that patches how the calendar is built."""
    get_calendar.cache_clear()
    yield
    get_calendar.cache_clear()
