"""The synthetic brokerage: contract shape, determinism, status shares, trading rules, campaign, CSV/GBK, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from panhuo.calendar import get_calendar
from panhuo.contract.schema import TABLES, input_arrow_type
from panhuo.generate import default_as_of, generate_brokerage

REPO = Path(__file__).resolve().parents[2]
PANHUO = REPO / ".venv" / "bin" / "panhuo"
AS_OF = dt.date(2026, 11, 24)
N = 20_000
TABLE_NAMES = tuple(TABLES)



@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("gen") / "bk"
    rows = generate_brokerage(out, N, seed=11, as_of=AS_OF)
    return out, rows


def _read(out: Path, table: str) -> pa.Table:
    return pq.read_table(out / f"{table}.parquet")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_every_table_has_exactly_the_contract_columns_and_types(brokerage: tuple[Path, dict[str, int]]) -> None:
    out, rows = brokerage
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLE_NAMES)
    for name, table in TABLES.items():
        got = pq.read_schema(out / f"{name}.parquet")
        assert got.names == list(table.names), name
        for col in table.columns:
            assert got.field(col.name).type == input_arrow_type(col.kind), (name, col.name)
        t = _read(out, name)
        assert t.num_rows == rows[name] > 0
        for col in table.columns:
            if not col.nullable:
                assert t.column(col.name).null_count == 0, (name, col.name)
            if col.kind == "enum":
                assert set(pc.unique(t.column(col.name).drop_null()).to_pylist()) <= set(col.values), (name, col.name)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    c = tmp_path / "c"
    generate_brokerage(a, 1500, seed=3, as_of=AS_OF)
    generate_brokerage(b, 1500, seed=3, as_of=AS_OF)
    generate_brokerage(c, 1500, seed=4, as_of=AS_OF)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    for name in ("customers.parquet", "balances.parquet", "trades.parquet", "contact_history.parquet"):
        assert da[name] != dc[name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def _status_shares(out: Path) -> dict[str, float]:
    """DESIGN.md section 2, computed here from the files (dormant_flag wins where present)."""
    cust = _read(out, "customers")
    ids = cust.column("customer_id").to_numpy(zero_copy_only=False)
    pos = {c: i for i, c in enumerate(ids)}
    n = len(ids)
    bal = _read(out, "balances")
    bal = bal.filter(pc.equal(bal.column("as_of"), pa.scalar(AS_OF, pa.date32())))
    bi = np.array([pos[c] for c in bal.column("customer_id").to_pylist()], dtype=np.int64)
    cash = np.zeros(n)
    sec = np.zeros(n)
    total = np.zeros(n)
    cash[bi] = bal.column("cash").cast(pa.float64()).to_numpy()
    sec[bi] = bal.column("securities_value").cast(pa.float64()).to_numpy()
    total[bi] = cash[bi] + sec[bi] + bal.column("product_value").cast(pa.float64()).to_numpy()
    all_bal = _read(out, "balances")
    funded = np.zeros(n, bool)
    positive = pc.greater(
        pc.add(pc.add(all_bal.column("cash"), all_bal.column("securities_value")), all_bal.column("product_value")),
        0,
    )
    for c in all_bal.filter(positive).column("customer_id").unique().to_pylist():
        funded[pos[c]] = True
    trades = _read(out, "trades")
    traded_ever = np.zeros(n, bool)
    traded_3y = np.zeros(n, bool)
    for c in trades.column("customer_id").unique().to_pylist():
        traded_ever[pos[c]] = True
    cut = dt.date(AS_OF.year - 3, AS_OF.month, AS_OF.day)
    recent = trades.filter(pc.greater(trades.column("trade_date"), pa.scalar(cut, pa.date32())))
    for c in recent.column("customer_id").unique().to_pylist():
        traded_3y[pos[c]] = True
    opened = cust.column("open_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    new_empty = (opened > np.datetime64(AS_OF) - 30) & ~funded & ~traded_ever
    computed_dormant = (sec == 0) & (cash <= 100) & ~traded_3y & ~new_empty
    flag = cust.column("dormant_flag").to_numpy(zero_copy_only=False).astype(bool)
    dormant = flag & ~new_empty
    effective = (total >= 10_000) & ~dormant & ~new_empty
    sleeping = ~effective & ~dormant & ~new_empty
    return {
        "effective": effective.mean(),
        "sleeping": sleeping.mean(),
        "dormant": dormant.mean(),
        "computed_dormant": computed_dormant.mean(),
        "flag_on_computed": flag[computed_dormant].mean(),
        "new_empty": new_empty.mean(),
    }


def test_status_shares_fall_in_the_intended_bands(brokerage: tuple[Path, dict[str, int]]) -> None:
    s = _status_shares(brokerage[0])
    assert 0.20 <= s["effective"] <= 0.32, s
    assert 0.55 <= s["sleeping"] <= 0.75, s
    assert 0.05 <= s["dormant"] <= 0.10, s
    assert 0.05 <= s["computed_dormant"] <= 0.11, s
    assert 0.8 <= s["flag_on_computed"] < 1.0, s  # most but not all: "the flag wins" is exercised
    assert 0.008 <= s["new_empty"] <= 0.025, s


def test_trades_only_on_trading_days_inside_the_window(brokerage: tuple[Path, dict[str, int]]) -> None:
    trades = _read(brokerage[0], "trades")
    days = set(pc.unique(trades.column("trade_date")).to_pylist())
    start = dt.date(AS_OF.year - 5, AS_OF.month, AS_OF.day)
    sessions = set(get_calendar().sessions(start, AS_OF))
    assert days <= sessions
    assert len(days) > 0.9 * len(sessions)
    # ~30 trades per customer over five years
    assert 20 <= trades.num_rows / N <= 45


def test_commission_is_the_customers_rate_with_the_minimum_for_stock_and_fund(
    brokerage: tuple[Path, dict[str, int]],
) -> None:
    t = _read(brokerage[0], "trades")
    sf = t.filter(pc.is_in(t.column("asset_class"), pa.array(["stock", "fund"])))
    cust = sf.column("customer_id").to_numpy(zero_copy_only=False)
    amount = np.round(sf.column("amount").cast(pa.float64()).to_numpy() * 100).astype(np.int64)
    comm = np.round(sf.column("commission").cast(pa.float64()).to_numpy() * 100).astype(np.int64)
    assert (comm >= 500).all()
    # Infer each customer's rate from the trades above the minimum (rates are whole 0.1 bp).
    above = comm > 500
    est = {}
    for c, a, k in zip(cust[above], amount[above], comm[above]):
        if a > est.get(c, (0, 0))[0]:
            est[c] = (a, k)
    rate = {c: round(k / a, 5) for c, (a, k) in est.items()}
    rates = np.array(list(rate.values()))
    assert 0.00012 <= rates.min() and rates.max() <= 0.0005
    assert 0.0002 <= np.median(rates) <= 0.0003
    assert len(np.unique(rates)) > 10  # a per-customer rate, not one global rate
    checked = 0
    for c, a, k in zip(cust, amount, comm):
        r = rate.get(c)
        if r is None:
            continue
        expected = max(500, int(np.floor(a * r + 0.5 + 1e-9)))
        assert k == expected, (c, a, k, r)
        checked += 1
    assert checked > 0.2 * len(cust) and len(rate) > 0.1 * N


def test_holdings_add_up_and_new_empty_accounts_are_empty(brokerage: tuple[Path, dict[str, int]]) -> None:
    out = brokerage[0]
    h = _read(out, "holdings").group_by("customer_id").aggregate([("market_value", "sum")])
    bal = _read(out, "balances")
    bal = bal.filter(pc.equal(bal.column("as_of"), pa.scalar(AS_OF, pa.date32())))
    bal = bal.filter(pc.greater(bal.column("securities_value"), 0))
    sec = dict(zip(bal.column("customer_id").to_pylist(), bal.column("securities_value").to_pylist()))
    held = dict(zip(h.column("customer_id").to_pylist(), h.column("market_value_sum").to_pylist()))
    assert sec == held


def test_campaign_propensities_and_treated_shares(brokerage: tuple[Path, dict[str, int]]) -> None:
    ch = _read(brokerage[0], "contact_history")
    assert ch.num_rows > 0.3 * N
    assert len(pc.unique(ch.column("campaign_id"))) == 1
    assert len(ch.column("customer_id").unique()) == ch.num_rows
    prop = ch.column("propensity").to_numpy()
    treated = pc.equal(ch.column("group"), "treated").to_numpy(zero_copy_only=False)
    assert ((prop > 0) & (prop < 1)).all()
    levels = np.unique(prop)
    assert len(levels) >= 2  # propensities differ by tier
    for p in levels:
        sel = prop == p
        m = sel.sum()
        assert abs(treated[sel].mean() - p) <= 4 * np.sqrt(p * (1 - p) / m) + 1e-9, (p, m)
    sent = ch.column("sent_at").to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(dt.date)
    gap = (AS_OF - min(sent)).days
    assert 120 <= gap <= 185


def test_some_customers_complain_and_some_refuse_personalised_marketing(
    brokerage: tuple[Path, dict[str, int]],
) -> None:
    out = brokerage[0]
    ev = _read(out, "app_events")
    comp = ev.filter(pc.equal(ev.column("event"), "complaint"))
    share = len(comp.column("customer_id").unique()) / N
    assert 0.008 <= share <= 0.03, share  # about 1.5% complain in the last 120 days
    assert set(comp.column("channel").to_pylist()) <= {"call_centre", "online_service", "12386"}
    when = comp.column("event_time").to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(dt.date)
    assert all(0 <= (AS_OF - d).days < 120 for d in when)
    hours = pc.hour(comp.column("event_time")).to_numpy()
    assert ((hours >= 9) & (hours < 18)).all()  # office hours
    ids = ev.column("customer_id").to_numpy(zero_copy_only=False)
    assert (ids[1:] >= ids[:-1]).all()  # still one run of rows per customer

    perms = _read(out, "contact_permissions")
    ids = perms.column("customer_id").to_numpy(zero_copy_only=False)
    assert (ids[1:] >= ids[:-1]).all()
    pers = perms.filter(pc.equal(perms.column("channel"), "personalised"))
    assert len(pers.column("customer_id").unique()) == pers.num_rows  # one row per refusing customer
    assert not any(pers.column("allowed").to_pylist())
    assert 0.015 <= pers.num_rows / N <= 0.035, pers.num_rows / N  # about 2.5% refuse
    for channel in ("app_push", "sms", "wechat", "call"):  # every customer keeps one row per channel
        assert pc.sum(pc.equal(perms.column("channel"), channel)).as_py() == N


def test_csv_gbk_decodes_as_gbk(tmp_path: Path) -> None:
    out = tmp_path / "csv"
    rows = generate_brokerage(out, 800, seed=5, as_of=AS_OF, fmt="csv", encoding="gbk")
    raw = (out / "customers.csv").read_bytes()
    text = raw.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "省" in text or "市" in text
    header = text.splitlines()[0].replace('"', "").split(",")
    assert header == list(TABLES["customers"].names)
    assert len(text.splitlines()) == rows["customers"] + 1
    bal = (out / "balances.csv").read_bytes().decode("gbk").splitlines()
    assert re.fullmatch(r'"C\d{8}",\d{4}-\d{2}-\d{2},\d+\.\d{2},\d+\.\d{2},\d+\.\d{2}', bal[1]), bal[1]
    ev = (out / "app_events.csv").read_text("gbk").splitlines()[1]
    assert re.search(r',"?\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"?,', ev), ev
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.csv" for t in TABLE_NAMES)


def test_failed_run_leaves_no_files(tmp_path: Path) -> None:
    out = tmp_path / "broken"

    def boom(table: str, done: int, total: int) -> None:
        if table == "trades":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        generate_brokerage(out, 500, seed=1, as_of=AS_OF, progress=boom)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_default_as_of_is_the_last_trading_day_before_today() -> None:
    assert default_as_of(dt.date(2026, 10, 8)) == dt.date(2026, 9, 30)  # National Day holiday
    assert default_as_of(dt.date(2026, 11, 23)) == dt.date(2026, 11, 20)  # Monday -> Friday


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [str(PANHUO), "generate", "--customers", "2000", "--seed", "7", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "customers" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLE_NAMES)
    assert pq.read_metadata(out / "customers.parquet").num_rows == 2000
    snap = pq.read_table(out / "holdings.parquet").column("as_of")
    assert set(pc.unique(snap).to_pylist()) == {default_as_of()}  # the default as-of
    bad = subprocess.run(
        [str(PANHUO), "generate", "--customers", "10", "--out", str(tmp_path / "x"), "--format", "parquet",
         "--encoding", "gbk"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "CSV only" in bad.stderr
