"""The segment language can say "top 20% by predicted uplift": top_percent/bottom_percent over the scores."""

from __future__ import annotations

import ibis
import pytest

from panhuo.errors import SegmentError
from panhuo.segments.compiler import check, compile_rule
from panhuo.segments.symbols import BUILTIN

__all__: list[str] = []


@pytest.fixture
def table() -> ibis.Table:
    # customer i has uplift i/100 (customer 0 has none); even customers are sleeping
    return ibis.memtable({
        "customer_id": [f"C{i:03d}" for i in range(100)],
        "uplift": [None] + [i / 100 for i in range(1, 100)],
        "total_assets_fen": [i * 100_00 for i in range(100)],
        "status": ["sleeping" if i % 2 == 0 else "effective" for i in range(100)],
    })


def _ids(table: ibis.Table, rule: str) -> list[int]:
    got = table.filter(compile_rule(rule, table)).customer_id.execute().tolist()
    return sorted(int(c[1:]) for c in got)


def test_top_percent_selects_the_highest_share_of_customers_with_a_score(table) -> None:
    assert _ids(table, "top_percent(uplift, 20)") == list(range(80, 100))
    assert _ids(table, "bottom_percent(uplift, 10)") == list(range(1, 11))
    assert _ids(table, "top_percent(uplift, 100)") == list(range(1, 100))  # never the customer without a score


def test_the_cut_is_over_the_whole_table_whatever_else_the_rule_says(table) -> None:
    # the sleeping customers among the top 20%, not the top 20% of the sleeping ones
    assert _ids(table, "status = 'sleeping' and top_percent(uplift, 20)") == list(range(80, 100, 2))
    assert _ids(table, "status = 'sleeping' or top_percent(uplift, 20)") == sorted(
        set(range(0, 100, 2)) | set(range(80, 100)))


def test_money_can_be_ranked(table) -> None:
    assert _ids(table, "top_percent(total_assets, 5)") == list(range(95, 100))


def test_uplift_is_a_known_score_without_data() -> None:
    assert BUILTIN["uplift"].kind == "float"
    assert check("top_percent(uplift, 20) and best_channel = 'sms'", BUILTIN, want="bool") == "bool"


@pytest.mark.parametrize(("rule", "reason"), [
    ("top_percent(uplift, 0)", "constant percentage in (0, 100]"),
    ("top_percent(uplift, 101)", "constant percentage in (0, 100]"),
    ("top_percent(uplift, uplift)", "constant percentage"),
    ("top_percent(status, 20)", "number or money, not text 'status'"),
    ("top_percent(0.5, 20)", "number or money"),
    ("top_percent(uplift)", "top_percent"),
])
def test_wrong_use_is_a_clear_error(table, rule: str, reason: str) -> None:
    with pytest.raises(SegmentError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        compile_rule(rule, table)
