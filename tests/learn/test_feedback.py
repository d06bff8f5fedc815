"""Outcome tags on hand-built loads whose every value is known by construction, and panhuo's own sends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.engines import connect
from panhuo.learn.feedback import FAMILY, SCHEMA, compute_feedback
from panhuo.scores.store import ScoreStore
from tests.runs.conftest import AS_OF, NOW, make_live, sqlite_ws  # noqa: F401  (fixture)
from tests.status.conftest import make_load

__all__: list[str] = []

DAY = dt.date(2026, 3, 2)  # a Monday


def _contact(cid: str, when: str, channel: str, benefit: str | None = "level2-trial-7d",
             group: str = "treated") -> dict[str, Any]:
    return {"customer_id": cid, "campaign_id": "c1", "sent_at": dt.datetime.fromisoformat(when), "channel": channel,
            "benefit": benefit, "group": group, "propensity": 0.5}


def _trade(cid: str, day: str) -> dict[str, Any]:
    return {"customer_id": cid, "trade_date": dt.date.fromisoformat(day), "market": "SH", "symbol": "600000",
            "asset_class": "stock", "side": "buy", "quantity": 100.0, "amount_fen": 1_000_000, "commission_fen": 250}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    w = Workspace.open(tmp_path / "ws")
    opened = dt.date(2020, 1, 6)
    customers = [{"customer_id": c, "open_date": opened} for c in "ABCDEF"]
    customers.append({"customer_id": "G", "open_date": dt.date(2026, 3, 3)})  # opened after DAY
    history = [
        # A: sms answered two days later (in 90 days); wechat answered in December (outside 90 days)
        _contact("A", "2026-02-16 10:00", "sms"), _contact("A", "2025-12-01 10:00", "wechat", "market-weekly-news"),
        # B: three contacts this month, never answered; a holdout row with a trade is not a contact
        _contact("B", "2026-02-25 10:00", "call"), _contact("B", "2026-02-26 10:00", "call"),
        _contact("B", "2026-02-27 10:00", "sms"), _contact("B", "2026-02-20 10:00", "sms", group="holdout"),
        # C: sms answered once (a benefit the catalogue does not know), app_push answered twice (no benefit)
        _contact("C", "2025-06-01 10:00", "sms", "partner-coupon"), _contact("C", "2025-07-01 10:00", "app_push", None),
        _contact("C", "2025-08-01 10:00", "app_push", None),
        # D: contacted on Friday, trades on Tuesday 3 March, after DAY
        _contact("D", "2026-02-27 10:00", "sms"),
        # E: a trade on the 11th trading day after is too late; a trade the same day counts
        _contact("E", "2026-01-05 10:00", "sms"), _contact("E", "2026-02-02 10:00", "wechat"),
        # F: contacted more than 365 days ago only, answered
        _contact("F", "2025-01-06 10:00", "sms"),
    ]
    trades = [_trade("A", "2026-02-18"), _trade("A", "2025-12-02"), _trade("B", "2026-02-23"),
              _trade("C", "2025-06-03"), _trade("C", "2025-07-02"), _trade("C", "2025-08-04"),
              _trade("D", "2026-03-03"), _trade("E", "2026-01-20"), _trade("E", "2026-02-02"),
              _trade("F", "2025-01-07")]
    make_load(w, customers=customers, trades=trades, contact_history=history)
    return w


def _tags(ws: Workspace, day: dt.date) -> dict[str, dict[str, Any]]:
    r = compute_feedback(ws, connect(ws.settings.engine, ws.tmp_dir), day)
    return {row.pop("customer_id"): row for row in r.table.to_pylist()}


def test_outcome_tags_known_by_construction(ws: Workspace) -> None:
    got = _tags(ws, DAY)
    assert set(got) == set("ABCDEF")
    assert got["A"] == {"responded_90d": True, "best_channel": "sms", "best_benefit_kind": "level2_trial",
                        "contact_fatigue_30d": 0}  # sms and wechat tie on answers and rate; sms answered last
    assert got["B"] == {"responded_90d": False, "best_channel": None, "best_benefit_kind": None,
                        "contact_fatigue_30d": 3}
    assert got["C"] == {"responded_90d": False, "best_channel": "app_push", "best_benefit_kind": "partner-coupon",
                        "contact_fatigue_30d": 0}
    assert got["D"] == {"responded_90d": False, "best_channel": None, "best_benefit_kind": None,
                        "contact_fatigue_30d": 1}  # the Tuesday trade is after DAY: not seen yet
    assert got["E"] == {"responded_90d": True, "best_channel": "wechat", "best_benefit_kind": "level2_trial",
                        "contact_fatigue_30d": 0}
    assert got["F"] == {"responded_90d": False, "best_channel": None, "best_benefit_kind": None,
                        "contact_fatigue_30d": 0}


def test_a_later_date_sees_the_later_answer(ws: Workspace) -> None:
    got = _tags(ws, DAY + dt.timedelta(days=1))
    assert got["D"] == {"responded_90d": True, "best_channel": "sms", "best_benefit_kind": "level2_trial",
                        "contact_fatigue_30d": 0}
    assert "G" in got and got["G"]["contact_fatigue_30d"] == 0


def test_stored_as_a_dated_snapshot_that_segments_read(ws: Workspace) -> None:
    con = connect(ws.settings.engine, ws.tmp_dir)
    r = compute_feedback(ws, con, DAY)
    store = ScoreStore.of(ws, FAMILY)
    assert store.dates() == [DAY] and r.path == store.path(DAY)
    assert pq.read_schema(r.path).names == SCHEMA.names
    assert r.contacts == 11 and r.customers == 6  # treated, in the 365 days; not F (older), not the holdout
    assert r.summary["contact_fatigue_30d"][1].startswith("max 3")

    from panhuo.scores.store import load_scores
    from panhuo.segments.compiler import compile_rule
    from panhuo.segments.symbols import builtin_symbols

    t = load_scores(ws, con, DAY)
    picked = t.filter(compile_rule("responded_90d and contact_fatigue_30d < 3 and best_channel = 'sms'", t,
                                   builtin_symbols()))
    assert sorted(picked.customer_id.execute()) == ["A"]


def test_no_contacts_gives_empty_tags(tmp_path: Path) -> None:
    w = Workspace.open(tmp_path / "ws")
    make_load(w, customers=[{"customer_id": "A", "open_date": dt.date(2020, 1, 6)}])
    assert _tags(w, DAY) == {"A": {"responded_90d": False, "best_channel": None, "best_benefit_kind": None,
                                   "contact_fatigue_30d": 0}}


def test_panhuos_own_sent_messages_are_contacts(sqlite_ws: Workspace, tmp_path: Path) -> None:  # noqa: F811
    from sqlalchemy import select, update

    from panhuo.runs.engine import run_playbook
    from panhuo.runs.models import OutboxMessage
    from panhuo.store import open_store

    make_live(sqlite_ws, tmp_path, holdout=0.3)
    run_playbook(sqlite_ws, "test-wake", AS_OF, now=NOW)
    store = open_store(sqlite_ws)
    try:
        with store.session() as s:
            msgs = s.execute(select(OutboxMessage.id, OutboxMessage.customer_id, OutboxMessage.channel)
                             .order_by(OutboxMessage.id)).all()
            assert len(msgs) >= 3
            sent = NOW + dt.timedelta(days=3)  # Monday 2 February, 10:00 Shanghai
            for m in msgs[:2]:
                s.execute(update(OutboxMessage).where(OutboxMessage.id == m.id).values(status="sent", sent_at=sent))
            s.commit()
    finally:
        store.dispose()
    (_, c1, ch1), (_, c2, _ch2) = msgs[0], msgs[1]
    everyone = sorted({m.customer_id for m in msgs})
    make_load(sqlite_ws, customers=[{"customer_id": c, "open_date": dt.date(2020, 1, 6)} for c in everyone],
              trades=[_trade(c1, "2026-02-03")])
    got = _tags(sqlite_ws, dt.date(2026, 2, 10))
    assert got[c1]["responded_90d"] is True and got[c1]["best_channel"] == ch1
    assert got[c2] == {"responded_90d": False, "best_channel": None, "best_benefit_kind": None,
                       "contact_fatigue_30d": 1}
    pending = [m.customer_id for m in msgs[2:] if m.customer_id not in (c1, c2)]
    assert all(got[c]["contact_fatigue_30d"] == 0 for c in pending)  # not sent: not a contact


def test_panhuo_feedback_prints_the_distributions(ws: Workspace) -> None:
    from typer.testing import CliRunner

    from panhuo.cli import _common
    from panhuo.cli.main import app

    _common.STATE._ws = None
    try:
        result = CliRunner().invoke(app, ["--workspace", str(ws.root), "feedback", "--as-of", DAY.isoformat()],
                                    env={"COLUMNS": "200"})
    finally:
        _common.STATE._ws = None
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "outcome tags 结果标签 as of 2026-03-02 (6 customers)" in out
    assert "responded_90d" in out and "2 true (33.3%)" in out
    assert "best_channel" in out and "contact_fatigue_30d" in out and "max 3" in out
    assert "11 contacts read" in out and ScoreStore.of(ws, FAMILY).dates() == [DAY]
