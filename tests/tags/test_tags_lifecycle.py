"""Lifecycle tags from the stored status: status, status_since, completed months and trading days in status."""

from __future__ import annotations

import ibis
import pytest

from panhuo.calendar import get_calendar
from tests.status.conftest import D
from tests.tags.conftest import AS_OF


def test_status_and_since(tags) -> None:
    assert (tags["a"]["status"], tags["a"]["status_since"], tags["a"]["months_in_status"]) == (
        "effective", D("2026-08-31"), 2)
    assert (tags["c"]["status"], tags["c"]["status_since"], tags["c"]["months_in_status"]) == (
        "sleeping", D("2026-11-24"), 0)
    assert tags["b"]["status"] == "new_empty"
    assert tags["g"]["status"] == "dormant"


def test_trading_days_in_status(tags) -> None:
    cal = get_calendar()
    assert tags["a"]["trading_days_in_status"] == cal.trading_days_between(D("2026-08-31"), AS_OF)
    assert tags["a"]["trading_days_in_status"] == 55  # 2026-08-31 (Mon) to 2026-11-24; the National Day week closed
    assert tags["c"]["trading_days_in_status"] == 0  # changed on as_of


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [("2026-01-31", "2026-02-28", 0), ("2026-01-31", "2026-03-01", 1), ("2026-01-15", "2026-02-15", 1),
     ("2026-01-15", "2026-02-14", 0), ("2025-11-24", "2026-11-24", 12), ("2026-11-24", "2026-11-24", 0)],
)
def test_months_between(start: str, end: str, months: int) -> None:
    from panhuo.tags.lifecycle import months_between

    t = ibis.memtable({"s": [D(start)]})
    out = t.select(m=months_between(t.s, ibis.literal(D(end), type="date"))).to_pyarrow().column("m")[0].as_py()
    assert out == months
