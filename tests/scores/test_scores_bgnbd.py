"""BG/NBD scores: the trading-day summary (DuckDB and Spark), stored snapshots, model versions, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import panhuo.scores as scores_pkg
import panhuo.scores.bgnbd as bgnbd_mod
import panhuo.scores.store as store_mod
import panhuo.scores.summary as summary_mod
from panhuo.calendar import get_calendar
from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.errors import WarehouseError
from panhuo.generate import generate_brokerage
from panhuo.scores import ScoreStore, list_models, load_scores, score_bgnbd, train_bgnbd
from panhuo.scores.summary import collapsed_summary, trading_day_summary
from panhuo.warehouse import Warehouse
from tests.conftest import PANHUO
from tests.status.conftest import D, make_load

AS_OF = dt.date(2026, 11, 24)


def _trade(cid: str, day: str) -> dict:
    return {"customer_id": cid, "trade_date": D(day), "market": "SH", "asset_class": "stock", "side": "buy",
            "amount_fen": 100_000, "commission_fen": 50}


def _summary_rows(ws: Workspace, con, as_of: dt.date) -> dict[str, tuple[int, int, int]]:
    wh = Warehouse(ws.warehouse_dir)
    t = trading_day_summary(wh.table(con, "trades"), get_calendar(), as_of).to_pyarrow().to_pylist()
    return {r["customer_id"]: (r["frequency"], r["recency"], r["T"]) for r in t}


@pytest.fixture
def small_load(workspace):
    trades = [
        _trade("A", "2026-09-28"), _trade("A", "2026-09-28"),  # two trades, one trading day
        _trade("A", "2026-10-09"),  # after the National Day closure (1-7 October 2026)
        _trade("A", "2026-11-24"),
        _trade("A", "2026-11-25"),  # after as_of: left out
        _trade("B", "2026-11-20"),
        _trade("C", "2026-10-10"),  # a Saturday: not a session, left out
        _trade("C", "2026-11-02"),
        _trade("D", "2026-12-01"),  # only after as_of: no summary
    ]
    customers = [{"customer_id": c} for c in "ABCDE"]
    make_load(workspace, customers=customers, trades=trades)
    return workspace


def test_summary_counts_trading_days(small_load, con):
    cal = get_calendar()
    got = _summary_rows(small_load, con, AS_OF)
    first = D("2026-09-28")
    assert got["A"] == (2, cal.trading_days_between(first, AS_OF), cal.trading_days_between(first, AS_OF))
    assert got["B"] == (0, 0, cal.trading_days_between(D("2026-11-20"), AS_OF))
    assert got["C"] == (0, 0, cal.trading_days_between(D("2026-11-02"), AS_OF))
    assert set(got) == {"A", "B", "C"}
    assert cal.trading_days_between(D("2026-09-30"), D("2026-10-08")) == 1  # the closure is not counted


def test_summary_as_of_on_a_weekend_counts_to_the_last_session(small_load, con):
    got = _summary_rows(small_load, con, D("2026-11-22"))  # Sunday
    assert got["B"] == (0, 0, 0)


def test_collapsed_summary_counts_customers(small_load, con):
    wh = Warehouse(small_load.warehouse_dir)
    c = collapsed_summary(trading_day_summary(wh.table(con, "trades"), get_calendar(), AS_OF))
    assert sum(c.column("n").to_pylist()) == 3


@pytest.mark.spark
def test_summary_parity_duckdb_and_spark(small_load, spark_backend, tmp_path):
    from panhuo.config import DuckDBSettings
    from panhuo.engines.duckdb import connect

    duck = connect(DuckDBSettings(memory_limit="1GB"), tmp_path)
    assert _summary_rows(small_load, duck, AS_OF) == _summary_rows(small_load, spark_backend, AS_OF)


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("brokerage")
    generate_brokerage(folder, customers=300, seed=5, as_of=AS_OF)
    return folder


@pytest.fixture
def loaded(workspace, brokerage):
    """The generated brokerage ingested (on DuckDB: both engines read the same stored Parquet)."""
    ingest(workspace, brokerage)
    return workspace


def test_score_bgnbd_stores_every_customer(loaded, con):
    result = score_bgnbd(loaded, con, AS_OF)
    table = pq.read_table(result.path)
    assert table.num_rows == 300 == result.customers
    assert table.schema.names == bgnbd_mod.SCORE_SCHEMA.names
    rows = table.to_pylist()
    scored = [r for r in rows if r["p_alive"] is not None]
    assert len(scored) == result.scored > 0
    assert all(0 < r["p_alive"] <= 1 and 0 <= r["expected_trading_days_90"] <= 90 for r in scored)
    assert all(r["p_alive"] == 1.0 for r in scored if r["bgnbd_frequency"] == 0)  # the BG/NBD x = 0 rule
    assert all(r["bgnbd_frequency"] is None for r in rows if r["p_alive"] is None)
    meta = json.loads(result.meta_path.read_text(encoding="utf-8"))
    assert meta["model_version"] == result.version and set(meta["params"]) == {"r", "alpha", "a", "b"}
    assert meta["time_unit"] == "trading day" and meta["rows"] == 300
    assert [m["version"] for m in list_models(loaded, "bgnbd")] == [result.version]
    loaded_scores = result.table.to_pyarrow()
    assert loaded_scores.num_rows == 300 and "p_alive" in loaded_scores.schema.names


def test_apply_uses_the_latest_trained_model(loaded, con):
    trained = train_bgnbd(loaded, con, AS_OF)
    applied = score_bgnbd(loaded, con, AS_OF, model="latest")
    assert applied.version == trained.version
    assert applied.params == pytest.approx(trained.params)
    with pytest.raises(WarehouseError, match="no bgnbd model trained on data up to 2026-06-30"):
        score_bgnbd(loaded, con, D("2026-06-30"), model="latest")


def test_rescoring_a_date_replaces_its_snapshot(workspace, brokerage):
    from panhuo.engines import connect

    con = connect(workspace.settings.engine, workspace.tmp_dir)
    ingest(workspace, brokerage, con=con)
    first = score_bgnbd(workspace, con, AS_OF)
    second = score_bgnbd(workspace, con, AS_OF)
    assert not first.path.exists() and second.path.exists()
    assert sorted(p.name for p in second.path.parent.iterdir()) == sorted([second.path.name, "2026-11-24.json"])
    assert ScoreStore.of(workspace, "bgnbd").dates() == [AS_OF]


def test_as_of_before_any_trade_stores_nothing(small_load, con):
    with pytest.raises(WarehouseError, match="no trades on or before 2020-01-02"):
        score_bgnbd(small_load, con, D("2020-01-02"))
    assert ScoreStore.of(small_load, "bgnbd").dates() == []
    assert list_models(small_load, "bgnbd") == []


def test_load_scores_joins_score_families(small_load, con):
    import pyarrow as pa

    score_bgnbd(small_load, con, AS_OF)
    schema = pa.schema([("customer_id", pa.string()), ("propensity", pa.float64())])
    other = pa.table({"customer_id": ["A", "E", "Z"], "propensity": [0.1, 0.2, 0.3]}, schema=schema)
    ScoreStore.of(small_load, "propensity").write(AS_OF, other.to_batches(), schema, {"model_version": "test"})
    rows = {r["customer_id"]: r for r in load_scores(small_load, con, AS_OF).to_pyarrow().to_pylist()}
    assert set(rows) == {"A", "B", "C", "D", "E", "Z"}
    assert rows["A"]["propensity"] == 0.1 and rows["A"]["p_alive"] is not None
    assert rows["Z"]["p_alive"] is None and rows["D"]["propensity"] is None


def test_load_scores_before_any_score_raises(small_load, con):
    with pytest.raises(WarehouseError, match="no scores stored on or before 2026-11-24"):
        load_scores(small_load, con, AS_OF)


@pytest.mark.parametrize("module", [scores_pkg, bgnbd_mod, store_mod, summary_mod])
def test_all_lists_public_names(module):
    for name in module.__all__:
        assert hasattr(module, name)


def _panhuo(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PANHUO, *args], capture_output=True, text=True, check=False)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.slow
def test_train_and_apply_through_the_cli(tmp_path):
    data = tmp_path / "data"
    _panhuo("generate", "--customers", "2000", "--seed", "5", "--out", str(data), "--as-of", "2026-11-24")
    ws = ["--workspace", str(tmp_path / "ws")]
    _panhuo(*ws, "ingest", str(data))
    missing = _panhuo(*ws, "scores", "apply", "--as-of", "2026-11-24", ok=False)
    assert missing.returncode == 2 and "panhuo scores train" in missing.stderr
    trained = _panhuo(*ws, "scores", "train", "--as-of", "2026-11-24")
    assert "model version bgnbd-2026-11-24-" in trained.stdout
    model_files = list((tmp_path / "ws" / "models" / "bgnbd").glob("*.json"))
    assert len(model_files) == 1
    params = json.loads(model_files[0].read_text(encoding="utf-8"))["params"]
    applied = _panhuo(*ws, "scores", "apply", "--as-of", "2026-11-24", "--out", str(tmp_path / "s.csv"))
    assert "scored" in applied.stdout and model_files[0].stem in applied.stdout
    lines = (tmp_path / "s.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2001 and lines[0].startswith('"customer_id","p_alive","expected_trading_days_90"')
    meta = json.loads((tmp_path / "ws" / "warehouse" / "scores" / "bgnbd" / "2026-11-24.json").read_text())
    assert meta["params"] == params
    bad = _panhuo(*ws, "scores", "apply", "--as-of", "2026-11-24", "--out", str(tmp_path / "s.txt"), ok=False)
    assert bad.returncode == 2 and "--out" in bad.stderr
