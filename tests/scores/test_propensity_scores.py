"""Reactivation propensity on a generated brokerage: time split, no leakage, training, scoring, report, CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import panhuo.scores.propensity as propensity_mod
import panhuo.scores.propensity_data as data_mod
from panhuo.calendar import get_calendar
from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.engines import connect
from panhuo.errors import WarehouseError
from panhuo.scores import (
    LeakageError,
    ScoreStore,
    list_propensity_models,
    load_scores,
    propensity_report,
    score_propensity,
    train_propensity,
)
from panhuo.scores.propensity_data import (
    anchor_data,
    check_no_leakage,
    encode_features,
    feature_columns,
    time_split,
)
from panhuo.status import compute_status
from panhuo.tags import load_tags
from tests.conftest import PANHUO

AS_OF = dt.date(2026, 11, 24)
OPTIONS = {"n_estimators": 30}  # few rounds: the tests need signal, not the last bit of AUC
#: the date column of every dated table of the generated brokerage (raw contract names)
DATED = {"customers": "open_date", "balances": "as_of", "trades": "trade_date", "app_events": "event_time",
         "contact_permissions": "updated_at", "holdings": "as_of", "market_events": "date",
         "contact_history": "sent_at"}


def _panhuo(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PANHUO, *args], capture_output=True, text=True, check=False)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("propensity") / "data"
    _panhuo("generate", "--customers", "3000", "--seed", "9", "--out", str(folder), "--as-of", AS_OF.isoformat())
    return folder


def _workspace(root: Path, data: Path, status_dates: list[dt.date]):
    ws = Workspace.open(root)
    con = connect(ws.settings.engine, ws.tmp_dir)
    ingest(ws, data, con=con)
    for day in status_dates:
        compute_status(ws, con, day, backfill=False)
    return ws, con


@pytest.fixture(scope="module")
def trained(brokerage, tmp_path_factory):
    """Ingested, status at as-of through the Python API, one model trained (few rounds)."""
    ws, con = _workspace(tmp_path_factory.mktemp("ws") / "ws", brokerage, [AS_OF])
    steps: list[tuple[str, int, int]] = []
    result = train_propensity(ws, con, AS_OF, progress=lambda *a: steps.append(a), options=OPTIONS)
    return ws, con, result, steps


# -- the time split -----------------------------------------------------------------------
def test_time_split_keeps_training_outcomes_before_the_holdout_features():
    cal = get_calendar()
    s = time_split(cal, AS_OF, dt.date(2025, 10, 31), AS_OF)
    assert s.as_of == AS_OF
    assert cal.trading_days_between(s.model_anchor, AS_OF) == 90
    assert cal.trading_days_between(s.holdout_anchor, AS_OF) == 60 and s.holdout_label_end == AS_OF
    assert cal.trading_days_between(s.backtest_anchor, s.holdout_anchor) == 90
    assert cal.trading_days_between(s.backtest_anchor, s.backtest_label_end) == 60
    assert s.backtest_label_end < s.holdout_anchor  # training labels end before the evaluation features
    assert s.model_label_end <= AS_OF


def test_anchor_before_the_data_is_a_clear_error():
    with pytest.raises(WarehouseError, match="the data does not reach far enough back.*first balance snapshot is "
                                             "2025-10-31"):
        time_split(get_calendar(), dt.date(2026, 3, 31), dt.date(2025, 10, 31), AS_OF)


def test_as_of_after_the_data_is_a_clear_error():
    with pytest.raises(WarehouseError, match="needs outcomes up to 2026-11-25, but the data ends on 2026-11-24"):
        time_split(get_calendar(), dt.date(2026, 11, 25), dt.date(2025, 10, 31), AS_OF)


def test_training_too_early_stores_nothing(trained):
    ws, con, _, _ = trained
    before = [m["version"] for m in list_propensity_models(ws)]
    with pytest.raises(WarehouseError, match="does not reach far enough back"):
        train_propensity(ws, con, dt.date(2026, 2, 27), options=OPTIONS)
    assert [m["version"] for m in list_propensity_models(ws)] == before


# -- training -------------------------------------------------------------------------------
def test_holdout_auc_shows_real_signal(trained):
    _, _, result, _ = trained
    h = result.holdout
    assert h["auc"] > 0.6
    assert h["brier"] < h["brier_base_rate"]  # better than forecasting the base rate
    assert h["rows"] > 500 and 0 < h["positives"] < h["rows"]
    assert len(h["reliability"]) == 10


def test_training_reports_progress_and_stores_the_version(trained):
    ws, _, result, steps = trained
    assert steps[-1] == ("stored", 6, 6) and any(s.startswith("leak check") for s, _, _ in steps)
    folder = ws.root / "models" / "propensity" / result.version
    assert result.path == folder and sorted(p.name for p in folder.iterdir()) == ["model.json", "model.txt"]
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert meta["version"] == result.version and meta["as_of"] == AS_OF.isoformat()
    assert meta["anchors"] == result.anchors and meta["load_id"]
    assert meta["params"]["n_estimators"] == 30 and meta["params"]["deterministic"] is True
    assert meta["features"] == [f for f in result.model.feature_names_] and meta["leakage_checked"] is True
    assert set(meta["metrics"]) == {"holdout", "train"} and "branch_id" in meta["category_levels"]
    assert not any(f in meta["features"] for f in ("app_user", "status", "status_since", "risk_level"))
    assert (folder / "model.txt").read_text(encoding="utf-8").startswith("tree")
    assert not list((ws.root / "models" / "propensity").glob(".*"))  # no temporary folder left


def test_training_is_deterministic(trained):
    ws, con, result, _ = trained
    again = train_propensity(ws, con, AS_OF, options=OPTIONS, check_leakage=False)
    assert again.version != result.version
    assert again.model.to_model_string() == result.model.to_model_string()
    assert again.holdout == result.holdout


# -- no leakage ------------------------------------------------------------------------------
def _truncate(data: Path, out: Path, anchor: dt.date) -> Path:
    """A copy of the generated brokerage with every row dated after ``anchor`` deleted.

    Customers opened after the anchor go, and with them all their rows (an app user may log in
    before opening an account; such a customer does not exist yet at the anchor).
    """
    out.mkdir(parents=True)
    midnight = pa.scalar(dt.datetime.combine(anchor + dt.timedelta(days=1), dt.time()), pa.timestamp("us"))
    ids = None
    for table, column in DATED.items():  # customers first
        t = pq.read_table(data / f"{table}.parquet")
        col = t.column(column)
        keep = pc.less(col, midnight) if pa.types.is_timestamp(col.type) else pc.less_equal(col, anchor)
        if table == "contact_permissions":
            keep = pc.or_kleene(keep, pc.is_null(col))
        t = t.filter(pc.fill_null(keep, False))
        if ids is None:
            ids = t.column("customer_id")
        elif "customer_id" in t.column_names:
            t = t.filter(pc.is_in(t.column("customer_id"), value_set=ids.combine_chunks()))
        pq.write_table(t, out / f"{table}.parquet")
    return out


def test_features_come_only_from_data_on_or_before_the_anchor(trained, brokerage, tmp_path):
    """Recompute the holdout anchor's features from a brokerage cut at the anchor: identical."""
    ws, con, result, _ = trained
    anchor = dt.date.fromisoformat(result.anchors["holdout_anchor"])
    earlier = [dt.date.fromisoformat(result.anchors[k]) for k in ("backtest_anchor", "model_anchor")]
    full = anchor_data(ws, con, anchor, check=False).table
    cut_ws, cut_con = _workspace(tmp_path / "cut", _truncate(brokerage, tmp_path / "cut-data", anchor),
                                 sorted(earlier))  # the same status dates before the anchor
    cut = anchor_data(cut_ws, cut_con, anchor, check=True).table
    assert full.column("customer_id").to_pylist() == cut.column("customer_id").to_pylist()
    xa, names, levels = encode_features(full, anchor)
    xb, _, _ = encode_features(cut, anchor, levels)
    differ = [n for i, n in enumerate(names) if not np.array_equal(xa[:, i], xb[:, i], equal_nan=True)]
    assert differ == []
    assert len(names) == len(feature_columns()) > 30


def test_leak_check_catches_a_feature_from_the_future(trained):
    ws, con, result, _ = trained
    anchor = dt.date.fromisoformat(result.anchors["holdout_anchor"])
    stored = load_tags(ws, con, anchor).to_pyarrow()
    check_no_leakage(ws, con, anchor, stored)  # the real snapshot passes
    i = stored.schema.get_field_index("trade_count_90d")
    tampered = stored.set_column(i, "trade_count_90d", pc.add(stored.column(i), 1))
    with pytest.raises(LeakageError, match="change when every row after it is removed: trade_count_90d"):
        check_no_leakage(ws, con, anchor, tampered)
    j = stored.schema.get_field_index("last_trade_date")
    future = pa.array([AS_OF] * stored.num_rows, pa.date32())
    with pytest.raises(LeakageError, match="tag last_trade_date at .* holds 2026-11-24, after the anchor"):
        check_no_leakage(ws, con, anchor, stored.set_column(j, "last_trade_date", future))
    with pytest.raises(LeakageError, match="were read from the tag snapshot of"):
        check_no_leakage(ws, con, dt.date.fromisoformat(result.anchors["model_anchor"]), stored)


# -- scoring and the report ----------------------------------------------------------------
def test_apply_scores_the_customers_sleeping_at_as_of(trained):
    ws, con, result, _ = trained
    applied = score_propensity(ws, con, AS_OF, model=result.version)
    table = pq.read_table(applied.path)
    assert table.schema.names == ["customer_id", "reactivation_propensity"]
    tags = load_tags(ws, con, AS_OF).select("customer_id", "status").to_pyarrow().to_pylist()
    status = {r["customer_id"]: r["status"] for r in tags}
    rows = table.to_pylist()
    assert len(rows) == len(status) == applied.customers
    scored = [r for r in rows if r["reactivation_propensity"] is not None]
    assert len(scored) == applied.scored == sum(s == "sleeping" for s in status.values())
    assert all(status[r["customer_id"]] == "sleeping" and 0 < r["reactivation_propensity"] < 1 for r in scored)
    meta = json.loads(applied.meta_path.read_text(encoding="utf-8"))
    assert meta["model_version"] == result.version and meta["trained_as_of"] == AS_OF.isoformat()
    assert ScoreStore.of(ws, "propensity").dates() == [AS_OF]
    assert "reactivation_propensity" in load_scores(ws, con, AS_OF).columns


def test_apply_without_a_trained_model_stores_nothing(trained):
    ws, con, _, _ = trained
    with pytest.raises(WarehouseError, match="no propensity model trained on data up to 2026-06-30"):
        score_propensity(ws, con, dt.date(2026, 6, 30))
    with pytest.raises(WarehouseError, match="no propensity model version 'propensity-x'"):
        score_propensity(ws, con, AS_OF, model="propensity-x")


def test_report_shape(trained):
    ws, _, result, _ = trained
    rep = propensity_report(ws, version=result.version)
    assert set(rep) == {"version", "trained_as_of", "load_id", "target", "horizon_trading_days", "anchors",
                        "holdout", "train", "calibration", "feature_importance"}
    assert rep["holdout"]["auc"] == result.holdout["auc"] and "reliability" not in rep["holdout"]
    assert [r["bin"] for r in rep["calibration"]] == list(range(1, 11))
    assert {"mean_predicted", "observed_rate", "rows"} <= set(rep["calibration"][0])
    shares = [f["importance"] for f in rep["feature_importance"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1.0)
    assert all(f["zh"] and f["en"] and f["tag"] for f in rep["feature_importance"])
    assert len(propensity_report(ws, top=5)["feature_importance"]) == 5
    json.dumps(rep)  # JSON-ready


def test_report_without_a_model_raises(tmp_path):
    with pytest.raises(WarehouseError, match="no propensity model trained"):
        propensity_report(Workspace.open(tmp_path / "empty"))


@pytest.mark.parametrize("module", [propensity_mod, data_mod])
def test_all_lists_public_names(module):
    for name in module.__all__:
        assert hasattr(module, name)


# -- the CLI ----------------------------------------------------------------------------------
def test_train_and_apply_propensity_through_the_cli(brokerage, tmp_path):
    ws = ["--workspace", str(tmp_path / "ws")]
    _panhuo(*ws, "ingest", str(brokerage))
    missing = _panhuo(*ws, "scores", "apply", "--as-of", AS_OF.isoformat(), "--model", "propensity", ok=False)
    assert missing.returncode == 2 and "panhuo scores train" in missing.stderr
    trained = _panhuo(*ws, "scores", "train", "--as-of", AS_OF.isoformat(), "--model", "propensity")
    out = " ".join(trained.stdout.split())
    assert "propensity model version propensity-2026-11-24-" in out
    assert "AUC 0." in out and "Brier 0." in out and "feature importances" in out
    assert not (tmp_path / "ws" / "models" / "bgnbd").exists()  # only the model asked for
    csv = tmp_path / "p.csv"
    applied = _panhuo(*ws, "scores", "apply", "--as-of", AS_OF.isoformat(), "--model", "propensity", "--out", str(csv))
    assert "mean reactivation propensity" in " ".join(applied.stdout.split())
    lines = csv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"customer_id","reactivation_propensity"' and len(lines) == 3001
    bad = _panhuo(*ws, "scores", "train", "--as-of", AS_OF.isoformat(), "--model", "forest", ok=False)
    assert bad.returncode == 2 and "--model 'forest'" in bad.stderr
