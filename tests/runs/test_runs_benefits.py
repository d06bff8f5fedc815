"""Benefits in the run engine: stock and budget reserved in each batch's transaction, refusals blocked
with their reason code and counted in the funnel, nothing issued twice on a rerun, validity windows,
and a warning for benefit ids outside the catalogue (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from panhuo.benefits.ledger import usage
from panhuo.benefits.models import IssuedBenefit
from panhuo.config import Workspace
from panhuo.runs.engine import run_playbook
from panhuo.runs.models import Decision, OutboxMessage
from panhuo.store import open_store
from tests.runs.conftest import AS_OF, NOW, make_live

CATALOGUE = """\
items:
  - id: trial-50
    kind: level2_trial
    name: {zh: 体验卡, en: Trial}
    unit_cost: "2.00"
    stock: 50
    valid: {from: 2026-01-01}
  - id: trial-budget
    kind: level2_trial
    name: {zh: 体验卡预算, en: Trial on a budget}
    unit_cost: "3.33"
    budget: "100.00"
    valid: {from: 2026-01-01}
  - id: news-expired
    kind: news
    name: {zh: 过期资讯, en: Expired news}
    unit_cost: "0.00"
    valid: {from: 2025-01-01, to: 2025-12-31}
"""


def _catalogue(ws: Workspace) -> None:
    folder = ws.root / "benefits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.yaml").write_text(CATALOGUE, encoding="utf-8")


def _fast(ws: Workspace) -> Workspace:
    return ws.save(ws.settings.model_copy(update={"runs": ws.settings.runs.model_copy(
        update={"global_control_share": 0.0, "batch_size": 30})}))


def _counts(ws: Workspace) -> tuple[int, int, dict[str, int]]:
    store = open_store(ws)
    try:
        with store.session() as s:
            box = int(s.execute(select(func.count()).select_from(OutboxMessage)).scalar_one())
            ledger = int(s.execute(select(func.count()).select_from(IssuedBenefit)).scalar_one())
            reasons = dict(s.execute(select(Decision.reason, func.count()).where(Decision.guardrail == "benefit")
                                     .group_by(Decision.reason)).all())
            return box, ledger, {str(k): int(v) for k, v in reasons.items()}
    finally:
        store.dispose()


def test_stock_is_never_overdrawn_and_refusals_are_in_the_funnel(run_ws: Workspace, tmp_path: Path) -> None:
    ws = _fast(run_ws)
    _catalogue(ws)
    pid = make_live(ws, tmp_path, items="trial-50", holdout=0.0, segment="sleeping")
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    stages = dict(report.funnel)
    assert stages["sends"] == 50 == report.written
    assert stages["after benefit"] == 50
    refused = report.reasons["benefit_stock_exhausted"]
    assert refused > 0
    box, ledger, reasons = _counts(ws)
    assert (box, ledger) == (50, 50) and reasons == {"benefit_stock_exhausted": refused}
    again = run_playbook(ws, pid, AS_OF, now=NOW)  # the same run: nothing new
    assert dict(again.funnel)["sends"] == 50 and again.written == 0
    other = run_playbook(ws, pid, AS_OF, "second", now=NOW)  # another run: stock is gone
    assert dict(other.funnel)["sends"] == 0
    store = open_store(ws)
    try:
        with store.session() as s:
            u = {x.benefit_id: x for x in usage(s)}["trial-50"]
            assert u.issued == 50 and u.spent_fen == 100_00
    finally:
        store.dispose()


def test_budget_in_whole_fen_and_expired_benefits(run_ws: Workspace, tmp_path: Path) -> None:
    ws = _fast(run_ws)
    _catalogue(ws)
    pid = make_live(ws, tmp_path, pid="budget", items="trial-budget", holdout=0.0)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    assert dict(report.funnel)["sends"] == 30  # 100.00 // 3.33 = 30 units (0.10 left)
    assert report.reasons["benefit_budget_exhausted"] > 0
    pid2 = make_live(ws, tmp_path, pid="expired", items="news-expired", holdout=0.0)
    expired = run_playbook(ws, pid2, AS_OF, now=NOW)
    assert dict(expired.funnel)["sends"] == 0 and expired.reasons.get("benefit_not_valid", 0) > 0


def test_an_id_outside_the_catalogue_is_issued_with_a_warning(run_ws: Workspace, tmp_path: Path) -> None:
    ws = _fast(run_ws)
    pid = make_live(ws, tmp_path, items="news-daily", holdout=0.0)
    report = run_playbook(ws, pid, AS_OF, now=NOW)
    assert report.written > 0
    assert any("news-daily not in the benefit catalogue" in w for w in report.warnings)
