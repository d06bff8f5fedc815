"""Response history: treated contacts in 90/365 days, responses within 10 trading days, the extra-contacts hook."""

from __future__ import annotations

import datetime as dt

import ibis
import pytest

from panhuo.errors import ConfigError
from panhuo.tags import compute_tags, contact_rows
from tests.status.conftest import D
from tests.tags.conftest import AS_OF, clean, rows_by_id, tiny_tables


def test_contacts_and_responses(tags) -> None:
    a = tags["a"]
    # treated 2026-11-20 (answered by the 11-24 trade) and 2025-11-25 (day 365, answered the same day);
    # 2025-11-24 is day 366, the holdout row and the 2026-11-25 send do not count
    assert (a["contacts_90d"], a["contacts_365d"], a["responses_90d"], a["responses_365d"]) == (1, 2, 1, 2)
    assert a["last_contact_date"] == D("2026-11-20")
    c = tags["c"]  # contacted on 2026-08-27 (day 90); its only trade was before
    assert (c["contacts_90d"], c["responses_90d"], c["last_contact_date"]) == (1, 0, D("2026-08-27"))
    assert (tags["g"]["contacts_365d"], tags["g"]["last_contact_date"]) == (0, None)


def test_response_window_is_ten_trading_days(tags) -> None:
    assert tags["e"]["responses_90d"] == 1  # sent Fri 6 Nov, traded Fri 20 Nov: the 10th trading day
    assert tags["f"]["responses_90d"] == 0  # sent Thu 5 Nov, traded Fri 20 Nov: the 11th


def test_extra_contacts_hook_adds_panhuo_sends(duck, fresh) -> None:
    ws = fresh(duck, clean(tiny_tables()))
    extra = ibis.memtable({"customer_id": ["f", "g"], "sent_at": [dt.datetime(2026, 11, 19, 9), dt.datetime(2026, 11, 25, 9)]})
    res = compute_tags(ws, duck, AS_OF, extra_contacts=extra)
    got = rows_by_id(res.table)
    assert (got["f"]["contacts_90d"], got["f"]["responses_90d"]) == (2, 1)
    assert got["g"]["contacts_90d"] == 0  # sent after as_of


def test_extra_contacts_need_the_columns() -> None:
    with pytest.raises(ConfigError, match="sent_at"):
        contact_rows(None, ibis.memtable({"customer_id": ["a"]}))
    assert contact_rows(None, None) is None


def test_no_contact_history_gives_zeros(duck, fresh) -> None:
    tables = clean(tiny_tables())
    del tables["contact_history"]
    ws = fresh(duck, tables)
    got = rows_by_id(compute_tags(ws, duck, AS_OF).table)
    assert (got["a"]["contacts_365d"], got["a"]["responses_365d"], got["a"]["last_contact_date"]) == (0, 0, None)
