"""Trading tags against hand-computed values: windows (day 30 in, day 31 out), preferences, rates."""

from __future__ import annotations

from panhuo.calendar import get_calendar
from tests.status.conftest import D
from tests.tags.conftest import AS_OF


def test_trade_counts_by_window(tags) -> None:
    a = tags["a"]
    # 2026-10-26 (day 30) in, 2026-10-25 (day 31) out; 2026-08-27 in 90, 2026-08-26 out; 2025-11-25 in 365
    assert (a["trade_count_30d"], a["trade_count_90d"], a["trade_count_365d"]) == (2, 4, 6)
    assert (tags["b"]["trade_count_365d"], tags["c"]["trade_count_30d"], tags["c"]["trade_count_365d"]) == (0, 0, 1)


def test_amounts_and_commission_in_fen(tags) -> None:
    a = tags["a"]
    assert (a["traded_amount_30d_fen"], a["traded_amount_90d_fen"], a["traded_amount_365d_fen"]) == (
        10_002, 360_002, 660_002)
    assert (a["commission_30d_fen"], a["commission_90d_fen"], a["commission_365d_fen"]) == (6, 181, 331)
    assert tags["b"]["traded_amount_365d_fen"] == 0


def test_last_trade_and_trading_days_since(tags) -> None:
    assert tags["a"]["last_trade_date"] == AS_OF  # the 2026-11-25 trade is after as_of
    assert tags["a"]["trading_days_since_last_trade"] == 0
    assert tags["e"]["trading_days_since_last_trade"] == 2  # Fri 20 Nov -> Mon 23, Tue 24
    assert tags["c"]["trading_days_since_last_trade"] == get_calendar().trading_days_between(D("2026-06-01"), AS_OF)
    assert (tags["b"]["last_trade_date"], tags["b"]["trading_days_since_last_trade"]) == (None, None)


def test_preferences_by_amount_with_fixed_tie_order(tags) -> None:
    assert (tags["a"]["preferred_asset_class"], tags["a"]["preferred_market"]) == ("stock", "SH")
    # e traded 100.00 of fund on SZ and 100.00 of stock on SH: ties go to stock and SH
    assert (tags["e"]["preferred_asset_class"], tags["e"]["preferred_market"]) == ("stock", "SH")
    assert tags["f"]["preferred_asset_class"] == "option"
    assert (tags["b"]["preferred_asset_class"], tags["b"]["preferred_market"]) == (None, None)


def test_net_commission_rate_is_per_customer(tags) -> None:
    assert tags["a"]["net_commission_rate"] == 331 / 660_002
    assert tags["e"]["net_commission_rate"] == 30 / 20_000
    assert tags["b"]["net_commission_rate"] is None
