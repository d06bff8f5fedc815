"""Every starter playbook's audience compiles and counts on real tags; the built-in segments mean what they say.

One small synthetic brokerage (1,500 customers, as of Monday 2026-11-23 so the anniversary window
spans a weekend) goes through generate -> ingest -> status (with the 12-month backfill, so
``status_since`` is meaningful) -> tags -> BG/NBD scores, in-process once. Each playbook in
``playbooks/`` is validated and its candidate set (segment, exclusions, cap) built the way a run
builds it (``panhuo.runs.candidates.candidate_table``). The segment counts are checked against
plain-Python readings of the generated files and the stored tags.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from panhuo.calendar import get_calendar
from panhuo.config import Workspace
from panhuo.engines import connect
from panhuo.playbooks import load_playbook
from panhuo.segments import audience, load_library

__all__: list[str] = []

AS_OF = dt.date(2026, 11, 23)  # a Monday
N = 1500
PLAYBOOKS = sorted((Path(__file__).resolve().parents[2] / "playbooks").glob("*.yaml"))
STARTER_SEGMENTS = ("sleeping_traded_before", "sleeping_recent", "sleeping_high_value", "sleeping_silent_low_asset",
                    "sleeping_anniversary_today", "product_holders", "complained_90d", "no_call")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from panhuo.contract.ingest import ingest
    from panhuo.generate import generate_brokerage
    from panhuo.scores import score_bgnbd
    from panhuo.status.history import compute_status
    from panhuo.tags import compute_tags

    root = tmp_path_factory.mktemp("starter")
    data = root / "data"
    generate_brokerage(data, customers=N, seed=7, as_of=AS_OF)
    ws = Workspace.open(root / "ws")
    con = connect(ws.settings.engine, ws.tmp_dir)
    ingest(ws, data, con=con)
    compute_status(ws, con, AS_OF)
    compute_tags(ws, con, AS_OF)
    score_bgnbd(ws, con, AS_OF)
    tags = {r["customer_id"]: r for r in audience(ws, con, AS_OF).table.to_pyarrow().to_pylist()}
    return ws, con, data, tags


def _members(built, name: str) -> set[str]:
    ws, con, _, _ = built
    aud = audience(ws, con, AS_OF)
    return set(aud.members(name).select("customer_id").to_pyarrow().column(0).to_pylist())


@pytest.mark.parametrize("path", PLAYBOOKS, ids=[p.stem for p in PLAYBOOKS])
def test_starter_playbook_audience_compiles_and_counts(built, path: Path) -> None:
    from panhuo.runs.candidates import candidate_table

    ws, con, _, tags = built
    spec = load_playbook(path).spec
    cand = candidate_table(ws, con, spec, AS_OF)
    ids = cand.select("customer_id").to_pyarrow().column(0).to_pylist()
    assert len(ids) == len(set(ids))
    aud = audience(ws, con, AS_OF)
    in_segment = set(aud.members(spec.user.segment).select("customer_id").to_pyarrow().column(0).to_pylist())
    excluded = set().union(*(_members(built, x) for x in spec.user.exclude))
    expected = sorted(in_segment - excluded)
    if spec.user.max_audience is not None:
        expected = expected[: spec.user.max_audience]
    assert sorted(ids) == expected
    assert "refuses_personalised" in cand.columns  # the PIPL guardrail has its data


def test_every_starter_segment_is_a_builtin_and_each_playbook_names_one() -> None:
    lib = load_library(None)
    assert set(STARTER_SEGMENTS) <= set(lib.segments)
    for path in PLAYBOOKS:
        user = load_playbook(path).spec.user
        for name in (user.segment, *user.exclude):
            assert name in lib.segments, (path.name, name)
            seg = lib.segment(name)
            assert seg.zh and seg.en and seg.builtin


def test_starter_segments_are_not_empty_on_the_demo(built) -> None:
    for name in (*STARTER_SEGMENTS, "sleeping_alive", "new_empty", "dormant"):
        assert _members(built, name), name


def test_complained_and_no_call_read_the_raw_files(built) -> None:
    _, _, data, tags = built
    ev = pq.read_table(data / "app_events.parquet")
    start = dt.datetime.combine(AS_OF - dt.timedelta(days=89), dt.time())
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    comp = ev.filter(pc.and_(pc.equal(ev.column("event"), "complaint"),
                             pc.and_(pc.greater_equal(ev.column("event_time"), start),
                                     pc.less(ev.column("event_time"), end))))
    assert _members(built, "complained_90d") == set(comp.column("customer_id").to_pylist())

    perms = pq.read_table(data / "contact_permissions.parquet").to_pylist()
    latest: dict[str, tuple[dt.datetime, bool]] = {}
    for r in perms:
        if r["channel"] == "call" and r["updated_at"] < end:
            prev = latest.get(r["customer_id"])
            if prev is None or (r["updated_at"], not r["allowed"]) > (prev[0], not prev[1]):
                latest[r["customer_id"]] = (r["updated_at"], r["allowed"])
    consented = {c for c, (_, ok) in latest.items() if ok}
    assert _members(built, "no_call") == set(tags) - consented
    refused = {r["customer_id"] for r in perms if r["channel"] == "personalised" and not r["allowed"]}
    assert refused and {c for c, t in tags.items() if t["refuses_personalised"]} == refused & set(tags)


def test_sleeping_segments_follow_their_rules(built) -> None:
    _, _, data, tags = built
    cal = get_calendar()
    sleeping = {c for c, t in tags.items() if t["status"] == "sleeping"}

    assert _members(built, "sleeping_traded_before") == {c for c in sleeping if tags[c]["last_trade_date"]}
    recent = _members(built, "sleeping_recent")
    assert recent == {c for c in sleeping
                      if tags[c]["status_since"] and cal.trading_days_between(tags[c]["status_since"], AS_OF) <= 20}
    assert recent < sleeping  # the backfill dates most sleeping customers well before

    def high(t: dict) -> bool:
        return ((t["total_assets_365d_ago_fen"] or 0) >= 5_000_000 or (t["total_assets_90d_ago_fen"] or 0) >= 5_000_000
                or t["commission_365d_fen"] >= 50_000)

    assert _members(built, "sleeping_high_value") == {c for c in sleeping if high(tags[c])}
    assert _members(built, "sleeping_silent_low_asset") == {
        c for c in sleeping if tags[c]["logins_90d"] == 0 and tags[c]["total_assets_fen"] < 100_000}

    # anniversaries: opened on a day of Saturday 21 .. Monday 23 November in an earlier year
    customers = pq.read_table(data / "customers.parquet").to_pylist()
    opened = {r["customer_id"]: r["open_date"] for r in customers}
    window = {(11, 21), (11, 22), (11, 23)}
    expected = {c for c in sleeping if opened[c].year < AS_OF.year and (opened[c].month, opened[c].day) in window}
    assert _members(built, "sleeping_anniversary_today") == expected
    assert expected, "the demo has sleeping customers with an anniversary in the window"
    assert _members(built, "product_holders") == {c for c, t in tags.items() if t["product_holder"]}
