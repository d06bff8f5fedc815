"""Each guardrail refuses with its reason code; the funnel adds up (SQLite store, hand-built tags)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from panhuo.config import Workspace
from panhuo.runs.assignment import global_control
from panhuo.runs.engine import dry_run, run_playbook
from panhuo.runs.guardrails import REASONS
from panhuo.runs.models import Assignment, ContactLog, Decision, OutboxMessage
from panhuo.store import open_store
from tests.runs.conftest import AS_OF, NOW, make_live, tag_rows, write_tags

__all__: list[str] = []


def _decisions(ws: Workspace) -> dict[str, tuple[str, str, str]]:
    store = open_store(ws)
    try:
        with store.session() as s:
            return {d.customer_id: (d.guardrail, d.outcome, d.reason) for d in s.execute(select(Decision)).scalars()}
    finally:
        store.dispose()


def _outbox(ws: Workspace) -> list[OutboxMessage]:
    store = open_store(ws)
    try:
        with store.session() as s:
            return list(s.execute(select(OutboxMessage).order_by(OutboxMessage.customer_id)).scalars())
    finally:
        store.dispose()


def _set(ws: Workspace, **runs: object) -> Workspace:
    return ws.save(ws.settings.model_copy(update={"runs": ws.settings.runs.model_copy(update=runs)}))


def test_global_control_is_blocked_first_and_never_treated(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.3)
    pid = make_live(ws, tmp_path)
    run_playbook(ws, pid, AS_OF, now=NOW)
    dec = _decisions(ws)
    ids = sorted(dec)
    gc = {i for i, flag in zip(ids, global_control(ids, ws.settings.runs.global_salt, 0.3), strict=True) if flag}
    assert gc and {i for i, d in dec.items() if d[0] == "global_control"} == gc
    assert not gc & {m.customer_id for m in _outbox(ws)}
    store = open_store(ws)
    with store.session() as s:
        groups = {a.customer_id: (a.grp, a.propensity) for a in s.execute(select(Assignment)).scalars()}
    store.dispose()
    assert all(groups[i] == ("global_control", 0.3) for i in gc)


def test_consent_per_channel_and_sms_opt_out(sqlite_ws: Workspace, tmp_path: Path) -> None:
    rows = tag_rows()
    rows[1]["consent_sms"] = False  # replied T: SMS opt-out
    rows[2]["consent_app_push"] = False  # no push consent: falls back to SMS
    write_tags(sqlite_ws, rows)
    ws = _set(sqlite_ws, global_control_share=0.0, max_per_day=5)  # the two runs queue for the same day
    make_live(ws, tmp_path, pid="sms-only", channel="fixed: sms", holdout=0.0)
    make_live(ws, tmp_path, pid="push-then-sms", channel="order: [app_push, sms]", holdout=0.0)
    run_playbook(ws, "sms-only", AS_OF, now=NOW)
    assert _decisions(ws)["c00001"] == ("consent", "blocked", "no_consent_sms")
    run_playbook(ws, "push-then-sms", AS_OF, now=NOW)
    sent = {(m.playbook_id, m.customer_id): m.channel for m in _outbox(ws)}
    assert ("sms-only", "c00001") not in sent
    assert sent[("push-then-sms", "c00002")] == "sms"
    assert sent[("push-then-sms", "c00001")] == "app_push"


def test_dormant_only_via_activation_invite(sqlite_ws: Workspace, tmp_path: Path) -> None:
    seg = sqlite_ws.root / "segments"
    seg.mkdir()
    (seg / "wide.yaml").write_text("name: not_effective\nzh: 非有效\nen: not effective\n"
                                   "rule: status = 'sleeping' or status = 'dormant'\n", encoding="utf-8")
    ws = _set(sqlite_ws, global_control_share=0.0)
    make_live(ws, tmp_path, pid="wide", segment="not_effective", holdout=0.0)
    report = run_playbook(ws, "wide", AS_OF, now=NOW)
    dec = _decisions(ws)
    assert dec["c00009"] == ("dormant", "blocked", "dormant_activation_path_only")
    assert report.reasons["dormant_activation_path_only"] == 20
    make_live(ws, tmp_path, pid="invite", purpose="activation_invite", segment="dormant", holdout=0.0)
    run_playbook(ws, "invite", AS_OF, now=NOW)
    assert "c00009" in {m.customer_id for m in _outbox(ws) if m.playbook_id == "invite"}


def test_suitability_blocks_product_offers(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.0, benefit_risk={"fund-r3": "R3"})
    make_live(ws, tmp_path, pid="fund", items="fund-r3", holdout=0.0)
    report = run_playbook(ws, "fund", AS_OF, now=NOW)
    dec = _decisions(ws)
    # c00013: expired (13 % 13) ; c00017: no risk level ; c00001: C2 < R3 ; c00002: C3 ok
    assert dec["c00017"][2] == "suitability_no_risk_level"
    assert dec["c00013"][2] == "suitability_assessment_expired"
    assert dec["c00001"] == ("suitability", "blocked", "suitability_risk_above_level")
    assert dec["c00002"][1] == "send"
    assert set(report.reasons) <= {"suitability_no_risk_level", "suitability_assessment_expired",
                                   "suitability_risk_above_level"}
    # the same playbook with a non-product benefit: no suitability refusals
    make_live(ws, tmp_path, pid="news", items="news-daily", holdout=0.0)
    assert not {r for r in run_playbook(ws, "news", AS_OF, now=NOW).reasons if r.startswith("suitability")}


def test_frequency_caps_from_the_contact_log(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.0, max_per_day=1, max_per_week=3, max_per_month=8)
    pid = make_live(ws, tmp_path, holdout=0.0)
    store = open_store(ws)
    with store.session() as s:
        s.add(ContactLog(customer_id="c00002", channel="sms", sent_at=NOW - dt.timedelta(hours=1)))
        s.add_all(ContactLog(customer_id="c00003", channel="sms", sent_at=NOW - dt.timedelta(days=d)) for d in (1, 2, 3))
        s.add_all(ContactLog(customer_id="c00004", channel="sms", sent_at=NOW - dt.timedelta(days=d))
                  for d in range(8, 16))
        s.add(ContactLog(customer_id="c00005", channel="sms", sent_at=NOW - dt.timedelta(days=40)))
    store.dispose()
    run_playbook(ws, pid, AS_OF, now=NOW)
    dec = _decisions(ws)
    assert dec["c00002"] == ("frequency", "blocked", "freq_cap_day")
    assert dec["c00003"][2] == "freq_cap_week"
    assert dec["c00004"][2] == "freq_cap_month"
    assert dec["c00005"][1] == "send"
    # the queued messages of that run count against a second playbook the same day
    make_live(ws, tmp_path, pid="second", holdout=0.0)
    report = run_playbook(ws, "second", AS_OF, now=NOW + dt.timedelta(hours=1))
    assert report.funnel[-1] == ("sends", 0)


def test_send_window_defers_or_skips(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.0)
    pid = make_live(ws, tmp_path, holdout=0.0)
    late = NOW.replace(hour=22)
    report = run_playbook(ws, pid, AS_OF, now=late)
    assert report.deferred
    box = _outbox(ws)
    # Friday 22:00: deferred to the next window start on a trading day, Monday 09:00
    monday = dt.datetime(2026, 2, 2, 9, 0, tzinfo=NOW.tzinfo)
    assert box and all(m.send_after == monday for m in box)
    assert {d[1:] for d in _decisions(ws).values() if d[0] != "suitability"} <= {
        ("deferred", "deferred_to_send_window")}
    ws = _set(ws, outside_window="skip", max_per_day=9, max_per_week=9, max_per_month=9)
    skipped = run_playbook(ws, pid, AS_OF, "skip-run", now=late)
    assert skipped.reasons == {"outside_send_window": 180}
    assert skipped.funnel[-1] == ("sends", 0)


def test_one_message_per_customer_per_run(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(sqlite_ws, tmp_path)
    first = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    again = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    assert again.written == 0 and again.skipped == 180
    box = _outbox(sqlite_ws)
    assert len(box) == first.funnel[-1][1] == len({m.customer_id for m in box})
    other = run_playbook(sqlite_ws, pid, AS_OF, "second-key", now=NOW)
    assert len(_outbox(sqlite_ws)) == len(box) + other.funnel[-1][1]


def test_funnel_adds_up_and_dry_run_writes_nothing(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, benefit_risk={"fund-r3": "R3"})
    pid = make_live(ws, tmp_path, items="fund-r3")
    dry = dry_run(ws, pid, AS_OF, now=NOW)
    assert _outbox(ws) == [] and _decisions(ws) == {}
    real = run_playbook(ws, pid, AS_OF, now=NOW)
    assert dry.funnel == real.funnel
    counts = dict(real.funnel)
    stages = [v for k, v in real.funnel if k == "candidates" or k.startswith("after ")]
    assert stages == sorted(stages, reverse=True)
    assert counts["candidates"] == 180  # 200 minus 20 dormant outside the 'sleeping' segment
    assert counts["after one_per_run"] == counts["holdout"] + counts["sends"]
    assert counts["candidates"] - counts["after one_per_run"] == sum(real.reasons.values())
    dec = _decisions(ws)
    assert len(dec) == 180
    assert sum(d[1] == "holdout" for d in dec.values()) == counts["holdout"]
    assert len(_outbox(ws)) == counts["sends"]
    assert all(r in {x for rs in REASONS.values() for x in rs} for r in real.reasons)


def test_catalogue_products_are_checked_for_suitability(sqlite_ws: Workspace, tmp_path: Path) -> None:
    from panhuo.runs.engine import product_risk

    risk = product_risk(sqlite_ws)
    assert risk.get("new-fund-intro") == "R3" and "market-weekly-news" not in risk
    ws = _set(sqlite_ws, global_control_share=0.0)
    make_live(ws, tmp_path, pid="fund-launch", items="new-fund-intro", holdout=0.0)
    report = run_playbook(ws, "fund-launch", AS_OF, now=NOW)
    assert report.reasons.get("suitability_risk_above_level", 0) > 0


def test_channel_caps_fall_through_then_block(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.0)  # default channel caps: SMS 2 a week
    make_live(ws, tmp_path, pid="sms-first", channel="order: [sms, app_push]", holdout=0.0)
    make_live(ws, tmp_path, pid="sms-fixed", channel="fixed: sms", holdout=0.0)
    store = open_store(ws)
    with store.session() as s:
        s.add_all(ContactLog(customer_id="c00006", channel="sms", sent_at=NOW - dt.timedelta(days=d)) for d in (2, 4))
    store.dispose()
    run_playbook(ws, "sms-first", AS_OF, now=NOW)
    sent = {m.customer_id: m.channel for m in _outbox(ws)}
    assert sent["c00006"] == "app_push" and sent["c00007"] == "sms"
    ws = _set(ws, max_per_day=5, max_per_week=9)
    report = run_playbook(ws, "sms-fixed", AS_OF, now=NOW + dt.timedelta(minutes=5))
    assert report.reasons == {"freq_cap_channel": 1}  # c00006: two SMS this week, and SMS is the only channel


def test_suitability_per_arm_draws_among_suitable_arms(sqlite_ws: Workspace, tmp_path: Path) -> None:
    ws = _set(sqlite_ws, global_control_share=0.0, benefit_risk={"fund-r3": "R3"})
    make_live(ws, tmp_path, pid="arms", items="news-daily, fund-r3", holdout=0.0,
              arms="- {id: news, items: [news-daily]}\n- {id: fund, items: [fund-r3]}")
    report = run_playbook(ws, "arms", AS_OF, now=NOW)
    assert not {r for r in report.reasons if r.startswith("suitability")}  # the news arm suits everyone
    store = open_store(ws)
    with store.session() as s:
        got = {a.customer_id: (a.arm, a.propensity) for a in s.execute(select(Assignment)).scalars()}
    store.dispose()
    assert got["c00001"] == ("news", 1.0)  # C2: only the news arm is suitable
    assert got["c00013"] == ("news", 1.0)  # expired assessment: news only
    assert {got[c][1] for c in ("c00002", "c00003", "c00004")} == {0.5}  # C3-C5: both arms


def test_pipl_refusal_blocks_personalised_playbooks_only(sqlite_ws: Workspace, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{**r, "refuses_personalised": r["customer_id"] in ("c00001", "c00002")} for r in tag_rows()]
    pq.write_table(pa.Table.from_pylist(rows), sqlite_ws.warehouse_dir / "tags" / f"{AS_OF.isoformat()}.parquet")
    ws = _set(sqlite_ws, global_control_share=0.0, max_per_day=9)
    make_live(ws, tmp_path, pid="model-driven", personalised=True, holdout=0.0)
    make_live(ws, tmp_path, pid="plain", holdout=0.0)
    assert run_playbook(ws, "model-driven", AS_OF, now=NOW).reasons == {"pipl_refused_personalised": 2}
    assert run_playbook(ws, "plain", AS_OF, now=NOW).reasons == {}
    write_tags(ws, tag_rows())  # no refusal data: nobody blocked, and the run says so
    report = run_playbook(ws, "model-driven", AS_OF, "again", now=NOW)
    assert report.warnings and "refuses_personalised" in report.warnings[0]


def test_dry_run_after_the_run_shows_the_same_funnel(sqlite_ws: Workspace, tmp_path: Path) -> None:
    pid = make_live(sqlite_ws, tmp_path)
    real = run_playbook(sqlite_ws, pid, AS_OF, now=NOW)
    assert dry_run(sqlite_ws, pid, AS_OF, now=NOW).funnel == real.funnel  # its own queued messages do not cap it
