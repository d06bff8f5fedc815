"""describe_tags: meaning and distribution of every tag (null share, min/median/max, top values)."""

from __future__ import annotations

from decimal import Decimal

from panhuo.tags import TAGS, describe_tags
from tests.tags.conftest import AS_OF


def test_describe_every_tag(tiny) -> None:
    ws, con, _ = tiny
    day, dists = describe_tags(ws, con)
    assert day == AS_OF
    assert [d.spec.name for d in dists] == [s.name for s in TAGS]
    by = {d.spec.name: d for d in dists}
    assert by["total_assets"].rows == 6
    assert by["total_assets"].minimum == Decimal("0.00")
    assert by["total_assets"].maximum == Decimal("98765432109876.54")  # exact, not a float
    assert by["total_assets_365d_ago"].null_share == 5 / 6
    assert by["trade_count_365d"].median == 1.0  # 0, 0, 1, 1, 2, 6
    assert by["status"].top[0] == ("effective", 3)
    assert by["monthly_active"].top == [(False, 5), (True, 1)]
    assert by["last_trade_date"].minimum.isoformat() == "2026-06-01"
    assert by["age_band"].nulls == 1
