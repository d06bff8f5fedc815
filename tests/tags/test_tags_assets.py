"""Asset tags against hand-computed values (see conftest for the tiny brokerage)."""

from __future__ import annotations

from decimal import Decimal

import ibis

from panhuo.tags.assets import asset_band_expr


def test_total_assets_and_band(tags) -> None:
    assert tags["a"]["total_assets_fen"] == 1_100_100  # 3000.01 + 8000 + 0.99
    assert tags["a"]["asset_band"] == "10k-100k"
    assert tags["c"]["asset_band"] == "1k-10k"
    assert tags["f"]["asset_band"] == ">=1M"
    assert (tags["b"]["total_assets_fen"], tags["b"]["asset_band"]) == (0, "<1k")  # no balance: 0


def test_band_boundaries_follow_the_settings() -> None:
    t = ibis.memtable({"x": [99_999, 100_000, 99_999_999, 100_000_000]})
    bounds = [Decimal(1000), Decimal(10000), Decimal(100000), Decimal(1000000)]
    out = t.select(b=asset_band_expr(t.x, bounds)).to_pyarrow().column("b").to_pylist()
    assert out == ["<1k", "1k-10k", "100k-1M", ">=1M"]


def test_assets_days_ago_take_the_snapshot_on_or_before(tags) -> None:
    a = tags["a"]
    # 30 days ago is 2026-10-25: the 2026-10-26 snapshot is one day too late
    assert a["total_assets_30d_ago_fen"] == 1_000_000
    assert a["total_assets_90d_ago_fen"] == 1_000_000  # the 2026-08-26 snapshot, on the day
    assert a["total_assets_365d_ago_fen"] == 100_000  # 2025-11-24, on the day
    assert tags["e"]["total_assets_365d_ago_fen"] is None
    assert tags["f"]["total_assets_30d_ago_fen"] is None


def test_trend_is_exact_at_ten_percent(tags) -> None:
    assert tags["a"]["asset_trend_90d"] == "up"  # 11001.00 vs 10000.00
    assert tags["e"]["asset_trend_90d"] == "flat"  # exactly +10%
    assert tags["c"]["asset_trend_90d"] == "down"  # 8999.99 vs 10000.00
    assert tags["f"]["asset_trend_90d"] is None  # nothing 90 days ago


def test_cash_share_and_products(tags) -> None:
    assert tags["a"]["cash_share"] == 300_001 / 1_100_100
    assert tags["b"]["cash_share"] is None
    assert tags["a"]["product_holder"] is True
    assert tags["c"]["product_holder"] is False


def test_huge_balance_is_exact(tags) -> None:
    assert tags["f"]["total_assets_fen"] == 9_876_543_210_987_654  # beyond float64's 2**53
