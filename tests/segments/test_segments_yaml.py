"""Custom tags and segments from workspace YAML: loading, evaluation, and located errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import ibis
import pytest

from panhuo.segments.errors import SegmentError
from panhuo.segments.library import load_library
from panhuo.segments.symbols import builtin_symbols, symbols_for_table
from tests.segments.conftest import AS_OF

__all__: list[str] = []


def write(root: Path, rel: str, body: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")


def error_of(root: Path) -> SegmentError:
    with pytest.raises(SegmentError) as info:
        load_library(root)
    return info.value


def test_custom_tag_and_segment_evaluate(tmp_path: Path, tags_table: ibis.Table) -> None:
    write(tmp_path, "tags/rich.yaml", """
        name: rich_once
        zh: 曾经高净值
        en: once rich
        kind: bool
        expr: total_assets_365d_ago >= 100000 or total_assets_90d_ago >= 50000
    """)
    write(tmp_path, "tags/drop.yaml", """
        name: asset_drop
        zh: 资产降幅
        en: asset drop
        kind: money
        expr: total_assets_90d_ago - coalesce(total_assets, 0)
    """)
    write(tmp_path, "segments/vip.yaml", """
        name: vip
        zh: 贵宾沉睡
        en: sleeping VIP
        rule: status = 'sleeping' and rich_once and asset_drop > 1000
        exclude: [dormant, "age > 70"]
        cap: 3
    """)
    lib = load_library(tmp_path)
    base = builtin_symbols().with_symbols(symbols_for_table(tags_table).values())
    table = lib.extend(tags_table, base, AS_OF)
    assert "asset_drop_fen" in table.columns and table.schema()["asset_drop_fen"].is_integer()
    symbols = lib.symbols(base)
    rows = tags_table.to_pyarrow().to_pylist()
    expected = [
        r for r in rows
        if r["status"] == "sleeping"
        and ((r["total_assets_365d_ago_fen"] or 0) >= 10_000_000 or r["total_assets_90d_ago_fen"] >= 5_000_000)
        and r["total_assets_90d_ago_fen"] - (r["total_assets_fen"] or 0) > 100_000
        and not r["age"] > 70
    ]
    assert expected, "the fixture should hold some VIPs"
    assert lib.count("vip", table, symbols, AS_OF) == min(3, len(expected))
    ids = lib.members("vip", table, symbols, AS_OF).to_pyarrow().column("customer_id").to_pylist()
    assert ids == sorted(r["customer_id"] for r in expected)[:3]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "segments/bad.yaml", "name: x\nzh: a\nen: b\nrule: [status\n")
    e = error_of(tmp_path)
    assert str(e).startswith("segments/bad.yaml line 5") and "not valid YAML" in str(e)


def test_unknown_tag_names_file_line_col_and_suggests(tmp_path: Path) -> None:
    write(tmp_path, "segments/vip.yaml", """
        name: vip
        zh: 贵宾
        en: VIP
        rule: status = 'sleeping' and total_asset >= 100000
    """)
    e = error_of(tmp_path)
    assert str(e) == "segments/vip.yaml line 4, col 31: unknown tag 'total_asset' (did you mean total_assets?)"
    assert e.token == "total_asset"


def test_error_inside_a_block_scalar_points_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "segments/vip.yaml", """
        name: vip
        zh: 贵宾
        en: VIP
        rule: >
          status = 'sleeping'
          and province > 3
    """)
    assert str(error_of(tmp_path)).startswith("segments/vip.yaml line 6, col 18: cannot compare text 'province'")


def test_unknown_segment_in_exclusion(tmp_path: Path) -> None:
    write(tmp_path, "segments/vip.yaml", "name: vip\nzh: a\nen: b\nrule: age > 3\nexclude: [dormnat]\n")
    e = error_of(tmp_path)
    assert str(e) == "segments/vip.yaml line 5, col 11: unknown segment 'dormnat' in exclude (did you mean dormant?)"


def test_exclusion_cycle(tmp_path: Path) -> None:
    write(tmp_path, "segments/a.yaml", "name: a\nzh: a\nen: a\nrule: age > 3\nexclude: [b]\n")
    write(tmp_path, "segments/b.yaml", "name: b\nzh: b\nen: b\nrule: age > 5\nexclude: [a]\n")
    assert "segments exclude each other in a cycle: a -> b -> a" in str(error_of(tmp_path))


def test_custom_tag_cycle(tmp_path: Path) -> None:
    write(tmp_path, "tags/x.yaml", "- {name: x1, zh: a, en: a, kind: int, expr: x2 + 1}\n"
                                   "- {name: x2, zh: b, en: b, kind: int, expr: x1 + 1}\n")
    e = error_of(tmp_path)
    assert "custom tags refer to each other in a cycle: x1 -> x2 -> x1" in str(e)
    assert str(e).startswith("tags/x.yaml line 1")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("name: vip\nzh: a\nen: b\nrule: age > 3\nrul: 1\n", "line 5, col 6: field rul: unknown field"),
        ("name: vip\nzh: a\nen: b\n", "line 1, col 1: field rule: Field required"),
        ("name: Vip!\nzh: a\nen: b\nrule: age > 3\n", "line 1, col 7: field name: String should match"),
        ("name: vip\nzh: a\nen: b\nrule: age > 3\ncap: 0\n", "line 5, col 6: field cap"),
        ("name: vip\nzh: a\nen: b\nrule: age\n", "line 4, col 7: a rule must be true or false"),
        ("name: vip\nzh: a\nen: b\nrule: x.__class__\n", "line 4, col 8: attribute access"),
        ("name: vip\nzh: a\nen: b\nrule: system('rm')\n", "line 4, col 7: unknown function 'system'"),
        ("name: vip\nname: vip2\nzh: a\nen: b\nrule: age > 1\n", "line 2, col 1: key 'name' appears twice"),
        ("!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
        ("", "the file is empty"),
        ("just text\n", "expected a mapping"),
    ],
)
def test_bad_segment_files(tmp_path: Path, body: str, needle: str) -> None:
    write(tmp_path, "segments/vip.yaml", body)
    e = error_of(tmp_path)
    assert str(e).startswith("segments/vip.yaml") and needle in str(e), str(e)


def test_custom_tag_may_not_shadow_a_builtin(tmp_path: Path) -> None:
    write(tmp_path, "tags/t.yaml", "name: age\nzh: a\nen: a\nkind: int\nexpr: 1 + 1\n")
    assert "has the name of a built-in tag" in str(error_of(tmp_path))


def test_custom_tag_kind_must_match(tmp_path: Path) -> None:
    write(tmp_path, "tags/t.yaml", "name: t\nzh: a\nen: a\nkind: int\nexpr: age > 3\n")
    assert "the expression is bool, but the kind given is int" in str(error_of(tmp_path))


def test_duplicate_segment_names(tmp_path: Path) -> None:
    write(tmp_path, "segments/a.yaml", "name: a\nzh: a\nen: a\nrule: age > 3\n")
    write(tmp_path, "segments/b.yaml", "name: a\nzh: a\nen: a\nrule: age > 3\n")
    assert "segment 'a' is already defined in segments/a.yaml line 1" in str(error_of(tmp_path))


def test_workspace_segment_replaces_a_builtin(tmp_path: Path) -> None:
    write(tmp_path, "segments/d.yaml", "name: dormant\nzh: a\nen: a\nrule: status = 'dormant' and age < 90\n")
    assert "age < 90" in load_library(tmp_path).segment("dormant").rule.text
