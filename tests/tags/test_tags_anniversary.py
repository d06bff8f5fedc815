"""Account-opening anniversaries (开户周年) and tenure in years: weekends and holidays roll forward to the
next trading day, 29 February counts on 28 February in other years, each anniversary is caught once.

The expressions are checked against a plain-Python reference (hypothesis, on DuckDB), over every
trading day of a year (each customer exactly once), and end to end through ``compute_tags``.
"""

from __future__ import annotations

import calendar as gregorian
import datetime as dt

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panhuo.calendar import get_calendar
from panhuo.tags import compute_tags
from panhuo.tags.profile import anniversary_expr, tenure_years_expr
from panhuo.tags.spec import covered_days
from tests.status.conftest import D
from tests.tags.conftest import _bal, _cust, _duck, rows_by_id, write_load

CAL = get_calendar()


def _anniversary(opened: dt.date, year: int) -> dt.date:
    if (opened.month, opened.day) == (2, 29) and not gregorian.isleap(year):
        return dt.date(year, 2, 28)
    return opened.replace(year=year)


def _window(as_of: dt.date) -> list[dt.date]:
    return covered_days(as_of, CAL.previous_trading_day(as_of))


def _expected_anniversary(opened: dt.date, as_of: dt.date) -> bool:
    prev = CAL.previous_trading_day(as_of)
    return any(prev < _anniversary(opened, y) <= as_of for y in range(opened.year + 1, as_of.year + 1))


def _expected_years(opened: dt.date, as_of: dt.date) -> int:
    return sum(1 for y in range(opened.year + 1, as_of.year + 1) if _anniversary(opened, y) <= as_of)


def _eval(con, opened: list[dt.date], as_of: dt.date, days: list[dt.date]) -> tuple[list[bool], list[int]]:
    t = ibis.memtable(pa.table({"o": pa.array(opened, pa.date32())}))
    out = con.to_pyarrow(t.select(a=anniversary_expr(t.o, days), y=tenure_years_expr(t.o, as_of)))
    return out.column("a").to_pylist(), out.column("y").to_pylist()


@pytest.fixture(scope="module")
def duck():
    return ibis.duckdb.connect()


def test_covered_days_roll_weekends_and_holidays_forward() -> None:
    assert covered_days(D("2026-11-24"), None) == [D("2026-11-24")]
    assert _window(D("2026-11-24")) == [D("2026-11-24")]  # a Tuesday
    assert _window(D("2026-03-02")) == [D("2026-02-28"), D("2026-03-01"), D("2026-03-02")]  # a Monday
    assert _window(D("2026-02-24")) == [D("2026-02-14") + dt.timedelta(days=i) for i in range(11)]  # Spring Festival
    assert _window(D("2026-01-05"))[0] == D("2026-01-01")  # New Year holiday crosses the year


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    opened=st.lists(st.dates(dt.date(2005, 1, 1), dt.date(2026, 12, 31)), min_size=1, max_size=40),
    as_of=st.sampled_from(CAL.sessions(dt.date(2006, 1, 4), dt.date(2026, 12, 31))),
)
def test_expressions_match_the_reference(duck, opened: list[dt.date], as_of: dt.date) -> None:
    opened = [o for o in [*opened, dt.date(2004, 2, 29), dt.date(2016, 2, 29), as_of] if o <= as_of]
    got_a, got_y = _eval(duck, opened, as_of, _window(as_of))
    assert got_a == [_expected_anniversary(o, as_of) for o in opened]
    assert got_y == [_expected_years(o, as_of) for o in opened]


def test_every_customer_is_celebrated_exactly_once_a_year(duck) -> None:
    """Over every trading day of 2025, each day of a leap year's openings has exactly one anniversary."""
    opened = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    t = ibis.memtable(pa.table({"o": pa.array(opened, pa.date32())}))
    days = CAL.sessions(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    cols = {f"d{i}": anniversary_expr(t.o, _window(d)).cast("int64") for i, d in enumerate(days)}
    out = duck.to_pyarrow(t.select(n=sum(cols.values(), ibis.literal(0, "int64")), o=t.o))
    counts = dict(zip(out.column("o").to_pylist(), out.column("n").to_pylist(), strict=True))
    assert set(counts.values()) == {1}
    # 29 Feb 2020 is celebrated on Friday 28 Feb 2025; 1 Jan on the first trading day, 2 Jan 2025
    assert anniversary_expr_on(duck, dt.date(2020, 2, 29), dt.date(2025, 2, 28))
    assert anniversary_expr_on(duck, dt.date(2020, 1, 1), dt.date(2025, 1, 2))


def anniversary_expr_on(con, opened: dt.date, as_of: dt.date) -> bool:
    return _eval(con, [opened], as_of, _window(as_of))[0][0]


def test_anniversary_and_tenure_through_compute_tags(duck_ws) -> None:
    """Monday 2 March 2026: the window is Saturday 28 Feb to Monday; 2026 has no 29 Feb."""
    ws, con = duck_ws
    tags = rows_by_id(compute_tags(ws, con, D("2026-03-02")).table)
    got = {cid: (r["anniversary_today"], r["tenure_years"]) for cid, r in tags.items()}
    assert got == {
        "leap": (True, 2),  # opened 2024-02-29: celebrated for 28 Feb 2026 (a Saturday) on Monday
        "sun": (True, 6),  # opened 2020-03-01, a Sunday anniversary
        "mon": (True, 1),  # opened 2025-03-02, today
        "fri": (False, 1),  # opened 2025-02-27: celebrated on Friday
        "tue": (False, 0),  # opened 2025-03-03: tomorrow
        "new": (False, 0),  # opened today: no anniversary in its own year
    }


@pytest.fixture
def duck_ws(workspace, tmp_path):
    from panhuo.status.history import compute_status

    con = _duck(tmp_path)
    opened = {"leap": "2024-02-29", "sun": "2020-03-01", "mon": "2025-03-02", "fri": "2025-02-27",
              "tue": "2025-03-03", "new": "2026-03-02"}
    tables = {
        "customers": [_cust(cid, day) for cid, day in opened.items()],
        "balances": [_bal(cid, "2026-02-27", "20000") for cid in opened],
    }
    write_load(workspace, tables)
    compute_status(workspace, con, D("2026-03-02"), backfill=False)
    return workspace, con
