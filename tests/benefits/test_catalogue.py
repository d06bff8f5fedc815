"""The benefit catalogue: schema rules, file/line/field errors, workspace overrides, playbook checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panhuo.benefits import (
    BenefitError,
    benefit_risk,
    check_playbook_benefits,
    load_catalogue,
    parse_catalogue,
    playbook_benefit_issues,
    to_fen,
)
from panhuo.config import Workspace
from panhuo.playbooks.loader import LoadedPlaybook, load_playbook, validate_playbook

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
GOOD = """items:
  - id: ipo-guide-video
    kind: advisor_video
    name: {zh: 新股视频, en: IPO video}
    unit_cost: 0
    valid: {from: 2026-01-01}
  - id: fund-coupon
    kind: product
    name: {zh: 基金体验, en: Fund trial}
    risk: R4
    unit_cost: 12.5
    stock: 10
    budget: "125.00"
    valid: {from: 2026-01-01, to: 2026-12-31}
"""


def _errors(text: str, file: str = "benefits/x.yaml") -> list[str]:
    with pytest.raises(BenefitError) as info:
        parse_catalogue(text, file)
    return [str(i) for i in info.value.issues]


def test_starter_catalogue_covers_every_starter_playbook() -> None:
    cat = load_catalogue(None)
    for f in sorted((REPO / "playbooks").glob("*.yaml")):
        check_playbook_benefits(load_playbook(f), cat)
    assert cat.get("commission-coupon-30d").terms is not None
    assert cat.get("new-fund-intro").risk == 3


def test_parse_good_file_exact_money_and_default_risk() -> None:
    (video, line1), (fund, line2) = parse_catalogue(GOOD, "b.yaml")
    assert (line1, line2) == (2, 7)
    assert video.risk == 1 and fund.risk == 4 and fund.risk_label == "R4"
    assert fund.unit_cost == Decimal("12.50") and fund.unit_cost_fen == 1250 and fund.budget_fen == 12500


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (("    risk: R4\n", ""), "benefits/x.yaml line 7, field items[1]: a product needs a product risk rating"),
        (("risk: R4", "risk: R6"), "benefits/x.yaml line 10, field items[1].risk: 'R6' is not a risk rating R1..R5"),
        (("unit_cost: 12.5", "unit_cost: 12.505"), "line 11, field items[1].unit_cost: 12.505 is not a whole number of fen"),
        (("stock: 10", "stock: -1"), "line 12, field items[1].stock"),
        (("kind: product", "kind: cash"), "line 8, field items[1].kind: 'cash' is not one of"),
        (("to: 2026-12-31", "to: 2025-12-31"), "line 14, field items[1].valid: valid.to 2025-12-31 is before valid.from 2026-01-01"),
        (("    budget:", "    colour: red\n    budget:"), "line 13, field items[1].colour: unknown field 'colour'"),
        (("name: {zh: 基金体验", "name: {zh: 保本基金"), "line 9, field items[1].name.zh: forbidden wording '保本'"),
        (("id: fund-coupon", "id: ipo-guide-video"), "line 7, field items[1].id: duplicate id 'ipo-guide-video' (first on line 2)"),
        (("    unit_cost: 0\n", "    unit_cost: 0\n    unit_cost: 1\n"), "line 6, field items[0].unit_cost: duplicate key"),
        (("items:", "items: [\n"), "invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(patch: tuple[str, str], expected: str) -> None:
    old, new = patch
    assert old in GOOD
    errors = _errors(GOOD.replace(old, new, 1))
    assert any(expected in e for e in errors), errors


def test_coupon_needs_documented_terms_and_no_cash_rebate() -> None:
    coupon = """items:
  - id: c1
    kind: commission_coupon
    name: {zh: 佣金券, en: coupon}
    risk: R2
    unit_cost: 5
    valid: {from: 2026-01-01}
"""
    assert any("needs its documented price terms" in e for e in _errors(coupon))
    terms = coupon + "    terms: {rate: '0.0002', duration_days: 30, document: 条款v1, cash_rebate: true}\n"
    assert any("items[0].terms.cash_rebate" in e and "line 8" in e for e in _errors(terms))
    ok = coupon + "    terms: {rate: '0.0002', duration_days: 30, document: 条款v1}\n"
    assert parse_catalogue(ok, "c.yaml")[0][0].terms.duration_days == 30


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_money_to_fen_is_exact(amount: Decimal) -> None:
    assert to_fen(amount) == int(amount * 100) and Decimal(to_fen(amount)) / 100 == amount


def test_workspace_overrides_starter_and_duplicates_across_files(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "benefits").mkdir()
    (ws.root / "benefits" / "a.yaml").write_text(GOOD, encoding="utf-8")
    cat = load_catalogue(ws)
    assert cat.origin["ipo-guide-video"] == ("benefits/a.yaml", 2)
    assert benefit_risk(ws)["fund-coupon"] == 4 and benefit_risk(ws)["level2-trial-7d"] == 1
    (ws.root / "benefits" / "b.yaml").write_text(GOOD.split("  - id: fund-coupon")[0], encoding="utf-8")
    with pytest.raises(BenefitError, match=r"benefits/b.yaml line 2, field id: benefit 'ipo-guide-video' is also "
                                           r"defined in benefits/a.yaml line 2"):
        load_catalogue(ws)


def test_unknown_benefit_in_a_playbook_names_file_line_field() -> None:
    text = (REPO / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
    text = text.replace("- {id: level2-trial, items: [level2-trial-7d]}", "- {id: level2-trial, items: [level2-trail-7d]}")
    loaded = LoadedPlaybook(spec=validate_playbook(text, "playbooks/ipo.yaml"), text=text, source="playbooks/ipo.yaml")
    with pytest.raises(BenefitError) as info:
        check_playbook_benefits(loaded, load_catalogue(None))
    (issue,) = info.value.issues
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "level2-trail-7d" in ln)
    assert (issue.file, issue.line, issue.field) == ("playbooks/ipo.yaml", line, "method.arms[1].items[0]")
    assert "unknown benefit 'level2-trail-7d'" in issue.reason and "level2-trial-7d" in issue.reason


def test_validity_window_checked_on_a_date() -> None:
    loaded = load_playbook(REPO / "playbooks" / "ipo-day-wake-sleeping.yaml")
    cat = load_catalogue(None)
    assert playbook_benefit_issues(loaded, cat, as_of=dt.date(2026, 11, 24)) == []
    issues = playbook_benefit_issues(loaded, cat, as_of=dt.date(2028, 1, 3))
    assert {i.field for i in issues} == {"benefit.items[1]", "method.arms[1].items[0]"}
