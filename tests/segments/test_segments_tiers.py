"""The default tiering scheme: it loads, every tier is reachable, and tiers partition the customers
(every customer in exactly one tier) on DuckDB and PySpark."""

from __future__ import annotations

from pathlib import Path

import pytest

from panhuo.segments.compiler import compile_rule
from panhuo.segments.errors import SegmentError
from panhuo.segments.symbols import symbols_for_table
from panhuo.segments.tiers import assign_tiers, load_tiers, tier_summary
from tests.segments.conftest import AS_OF, tags_arrow, write_tags

__all__: list[str] = []

REQUIRED = {"sleeping_hv_active", "sleeping_hv_silent", "sleeping_young_active", "long_silent", "dormant",
            "new_empty", "effective_active", "effective_at_risk", "other"}


def test_default_scheme_has_the_required_tiers_with_strategies() -> None:
    scheme = load_tiers()
    assert REQUIRED <= set(scheme.ids()) and scheme.ids()[-1] == "other"
    for tier in scheme.tiers:
        assert tier.zh and tier.en and tier.strategy.timing and tier.strategy.benefit
        assert tier.strategy.channel and tier.strategy.method


def test_tiers_partition_the_customers(con, tmp_path: Path) -> None:
    table = con.read_parquet(str(write_tags(tmp_path / "tags.parquet", tags_arrow(as_of=None))))
    scheme = load_tiers()
    symbols = symbols_for_table(table)
    tiered = assign_tiers(scheme, table, symbols, AS_OF).to_pyarrow()
    assert tiered.num_rows == table.count().execute() == 60
    assert None not in tiered.column("tier").to_pylist()
    # each customer is in exactly one tier: the first whose rule holds
    flags = table.select("customer_id", **{t.id: compile_rule(t.rule, table, symbols, as_of=AS_OF)
                                           for t in scheme.tiers}).to_pyarrow().to_pylist()
    by_id = dict(zip(tiered.column("customer_id").to_pylist(), tiered.column("tier").to_pylist(), strict=True))
    for row in flags:
        first = next(t for t in scheme.ids() if row[t])
        assert by_id[row["customer_id"]] == first
    summary = tier_summary(scheme, table, symbols, AS_OF)
    assert sum(r.customers for r in summary) == 60
    assert abs(sum(r.share or 0 for r in summary) - 1) < 1e-9
    assert {r.id for r in summary if r.customers} >= {"dormant", "new_empty", "effective_at_risk", "other"}


def test_summary_average_assets_in_rmb(duck_con, tmp_path: Path) -> None:
    table = duck_con.read_parquet(str(write_tags(tmp_path / "t.parquet", tags_arrow(as_of=None))))
    rows = {r.id: r for r in tier_summary(load_tiers(), table, symbols_for_table(table), AS_OF)}
    data = [r for r in tags_arrow(as_of=None).to_pylist() if r["status"] == "dormant"]
    fen = [r["total_assets_fen"] for r in data if r["total_assets_fen"] is not None]
    assert rows["dormant"].customers == len(data)
    assert abs(float(rows["dormant"].avg_total_assets) - sum(fen) / len(fen) / 100) < 0.01


def test_scheme_must_end_with_a_catch_all(tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text("tiers:\n  - id: a\n    zh: a\n    en: a\n    rule: age > 3\n    strategy: "
                    "{timing: t, benefit: b, channel: c, method: m}\n", encoding="utf-8")
    with pytest.raises(SegmentError, match="last tier must catch every other customer"):
        load_tiers(path, display="tiers.yaml")
