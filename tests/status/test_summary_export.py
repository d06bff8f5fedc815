"""Summary numbers, exact export (Parquet decimal, CSV text), the HTML overview and the CLI end to end."""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
from decimal import Context, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from panhuo.config import Workspace
from panhuo.report.overview import write_overview
from panhuo.status.export import export_status, fen_array_to_decimal, fen_text, fen_to_decimal
from panhuo.status.history import compute_status
from panhuo.status.summary import band_labels, summarize
from tests.conftest import PANHUO
from tests.status.conftest import D, make_load
from tests.status.test_rules import bal, cust, trade

AS_OF = D("2025-06-30")


def event(cid: str, when: str, kind: str = "login") -> dict:
    return {"customer_id": cid, "event_time": dt.datetime.fromisoformat(when), "event": kind, "channel": "app"}


def brokerage(ws: Workspace) -> None:
    make_load(
        ws,
        customers=[
            cust("e1", branch_id="B1"), cust("e2", branch_id="B1"), cust("s1", branch_id="B2"),
            cust("d1", branch_id="B2"), cust("n1", D("2025-06-20"), branch_id="<b>&'x'"),
            cust("rich", branch_id=None),
        ],
        balances=[
            bal("e1", D("2025-05-31"), cash="5000"), bal("e1", D("2025-06-30"), cash="10000.00"),
            bal("e2", D("2025-06-30"), cash="0.01", sec="99999.99"),
            bal("s1", D("2025-05-31"), cash="20000"), bal("s1", D("2025-06-30"), cash="999.99"),
            bal("d1", D("2025-06-30"), cash="100.00"),
            bal("rich", D("2025-06-30"), cash="12345678.91", prod="0.09"),
        ],
        trades=[trade(c, D("2025-06-01")) for c in ("e1", "e2", "s1", "rich")],
        app_events=[
            event("e1", "2025-06-30T23:59:00"), event("e2", "2025-06-01T00:00:00"),  # both inside 30 days
            event("s1", "2025-05-31T23:59:00"),  # one day too early
            event("d1", "2025-07-01T00:00:00"),  # after as_of
            event("rich", "2025-06-15T10:00:00", "quote"),  # not a login
        ],
    )


def test_summary_numbers(con, workspace: Workspace) -> None:
    brokerage(workspace)
    res = compute_status(workspace, con, AS_OF)
    assert res.backfilled == [D("2025-05-31")]
    s = summarize(workspace, con, AS_OF)
    assert s.customers == 6
    assert s.counts == {"effective": 3, "sleeping": 1, "dormant": 1, "new_empty": 1}
    assert s.effective_share == pytest.approx(0.5)
    assert s.active_customers == 2 and s.active_share == pytest.approx(2 / 6)
    assert [(b.label, b.customers) for b in s.bands] == [
        ("<1k", 3), ("1k-10k", 0), ("10k-100k", 1), ("100k-1M", 1), (">=1M", 1)]  # lower bound inclusive
    assert [(b.branch_id, b.customers, b.effective) for b in s.branches] == [
        ("B1", 2, 2), ("B2", 2, 0), ("<b>&'x'", 1, 0), (None, 1, 1)]
    # e1 sleeping -> effective, s1 effective -> sleeping; n1 opened after the May month-end;
    # e2 and rich had nothing and no trade for years at the end of May (dormant), then were funded
    assert {(t.from_status, t.to_status, t.customers) for t in s.transitions} == {
        ("sleeping", "effective", 1), ("effective", "sleeping", 1), (None, "new_empty", 1),
        ("dormant", "effective", 2)}
    assert s.transitions_total == 5 == res.transitions
    assert [p.date for p in s.trend] == [D("2025-05-31"), AS_OF]


def test_band_labels() -> None:
    assert band_labels([Decimal(1000), Decimal(10000), Decimal(1000000)]) == ["<1k", "1k-10k", "10k-1M", ">=1M"]
    assert band_labels([Decimal("500.50")]) == ["<500.5", ">=500.5"]


def test_export_parquet_and_csv_exact(con, workspace: Workspace, tmp_path: Path) -> None:
    brokerage(workspace)
    compute_status(workspace, con, AS_OF)
    n = export_status(workspace, con, tmp_path / "s.parquet", AS_OF)
    assert n == 6
    t = pq.read_table(tmp_path / "s.parquet")
    assert t.schema.field("total_assets").type == pa.decimal128(18, 2)
    rows = {r["customer_id"]: r for r in t.to_pylist()}
    assert rows["rich"]["cash"] == Decimal("12345678.91")
    assert rows["rich"]["product_value"] == Decimal("0.09")
    assert rows["rich"]["total_assets"] == Decimal("12345679.00")
    assert rows["e1"]["status_since"] == AS_OF and rows["d1"]["status_since"] == D("2025-05-31")
    assert rows["n1"]["last_trade_date"] is None
    export_status(workspace, con, tmp_path / "s.csv", AS_OF)
    text = (tmp_path / "s.csv").read_text(encoding="utf-8")
    recs = {r["customer_id"]: r for r in csv.DictReader(text.splitlines())}
    assert recs["rich"]["total_assets"] == "12345679.00"
    assert recs["d1"]["cash"] == "100.00" and recs["d1"]["securities_value"] == "0.00"
    assert recs["e2"]["cash"] == "0.01"
    assert list(recs["e1"]) == ["customer_id", "status", "cash", "securities_value", "product_value",
                                "total_assets", "last_trade_date", "status_since"]
    assert not list(tmp_path.glob(".*tmp"))


@given(st.integers())
def test_fen_to_decimal_is_exact_for_any_int(fen: int) -> None:
    d = fen_to_decimal(fen)
    big = Context(prec=100_000)
    assert d.as_tuple().exponent == -2
    assert int(d.scaleb(2, big)) == fen
    assert Decimal(fen_text(fen)) == d
    assert re.fullmatch(r"-?\d+\.\d\d", fen_text(fen))


@given(st.lists(st.one_of(st.none(), st.integers(-(10**18) + 1, 10**18 - 1)), max_size=50), st.integers(0, 3))
def test_fen_array_to_decimal_is_exact(values: list[int | None], offset: int) -> None:
    arr = pa.array([0] * offset + values, pa.int64()).slice(offset)
    out = fen_array_to_decimal(arr)
    assert out.to_pylist() == [None if v is None else fen_to_decimal(v) for v in values]
    assert out.cast(pa.string()).to_pylist() == [None if v is None else fen_text(v) for v in values]


def test_fen_array_out_of_range() -> None:
    with pytest.raises(ValueError, match="decimal"):
        fen_array_to_decimal(pa.array([10**18], pa.int64()))


def test_html_overview_is_self_contained_and_escaped(con, workspace: Workspace) -> None:
    brokerage(workspace)
    compute_status(workspace, con, AS_OF)
    path = write_overview(workspace, con, AS_OF)
    assert path == workspace.reports_dir / "overview-2025-06-30.html"
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html
    assert "&lt;b&gt;&amp;&#39;x&#39;" in html and "<b>&'x'" not in html
    for zh in ("有效户", "沉睡户", "休眠户", "新开空户", "active share (app MAU / customers)", "<svg"):
        assert zh in html


def test_cli_end_to_end(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    brokerage(ws)
    out = tmp_path / "status.csv"
    run = subprocess.run(
        [PANHUO, "--workspace", str(ws.root), "status", "--as-of", "20250630", "--out", str(out), "--html"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "effective share" in run.stdout and "active share (app MAU / customers)" in run.stdout
    assert "backfilled 1 month-end" in run.stdout
    assert out.read_text(encoding="utf-8").count("\n") == 7
    assert (ws.reports_dir / "overview-2025-06-30.html").exists()
    bad = subprocess.run([PANHUO, "--workspace", str(ws.root), "status", "--as-of", "2025-13-01"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is not a valid calendar date" in bad.stderr
