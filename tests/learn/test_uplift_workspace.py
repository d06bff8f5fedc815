"""``panhuo uplift train|score|evaluate|list`` on a small generated brokerage with past randomized campaigns.

The generated ``contact_history`` (one SMS wake-up campaign, propensity 0.8/0.5 by tier) is rewritten
before ingest: half of its customers are contacted 30 days later (so the campaign has two contact dates
and a time split), and three small campaigns exercise the errors: every row treated (not randomized),
every row held out (nobody contacted), and too few rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from panhuo.cli import _common
from panhuo.cli.main import app
from panhuo.config import ConfigError, Workspace
from panhuo.contract.ingest import ingest
from panhuo.engines import connect
from panhuo.generate import generate_brokerage
from panhuo.learn.ope import OPEError
from panhuo.learn.uplift import UpliftError, list_uplift_models
from panhuo.measure.outcomes import MeasureError
from tests.conftest import PANHUO

__all__: list[str] = []

DATA_END = dt.date(2026, 11, 24)
CAMPAIGN = "sms-2026q2-wakeup"


def _rewrite(path: Path) -> None:
    t = pq.read_table(path)
    rows = t.to_pylist()
    for i, r in enumerate(rows):
        if i % 2:
            r["sent_at"] = r["sent_at"] + dt.timedelta(days=30)
    base = rows[0]
    extra = []
    for k in range(40):
        cid = rows[k]["customer_id"]
        extra.append({**base, "customer_id": cid, "campaign_id": "all-treated", "group": "treated", "propensity": 1.0})
        extra.append({**base, "customer_id": cid, "campaign_id": "all-holdout", "group": "holdout", "propensity": 0.5})
    for k in range(8):
        extra.append({**base, "customer_id": rows[k]["customer_id"], "campaign_id": "tiny",
                      "group": "treated" if k % 2 else "holdout", "propensity": 0.5})
    pq.write_table(pa.Table.from_pylist(rows + extra, schema=t.schema), path)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("brokerage")
    generate_brokerage(folder, customers=1500, seed=7, as_of=DATA_END)
    _rewrite(folder / "contact_history.parquet")
    w = Workspace.open(tmp_path_factory.mktemp("ws") / "ws")
    ingest(w, folder, con=connect(w.settings.engine, w.tmp_dir))
    _common.STATE._ws = None
    yield w
    _common.STATE._ws = None


def _cli(ws: Workspace, *args: str) -> str:
    _common.STATE._ws = None
    result = CliRunner().invoke(app, ["--workspace", str(ws.root), *args], env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def trained(ws: Workspace) -> dict:
    out = _cli(ws, "uplift", "train", "--campaign", CAMPAIGN, "--window", "20", "--rounds", "40", "--threads", "1")
    assert "time split: trained on contacts up to 2026-06-" in out, out
    assert "Qini" in out and "model version uplift-" in out
    (meta,) = list_uplift_models(ws)
    return meta


def test_training_stores_the_model_with_its_metadata(ws: Workspace, trained: dict) -> None:
    m = trained
    assert m["learner"] == "x" and m["arms"] == ["level2-trial-7d"]
    assert m["split"]["kind"] == "time"
    assert m["split"]["train_until"] < m["split"]["evaluate_from"] <= m["split"]["evaluate_until"]
    assert m["training_window"]["first_contact"] == "2026-06-29"
    assert len(m["training_window"]["feature_dates"]) == 2  # the trading day before each contact date
    assert all(d < "2026-06-29" for d in m["training_window"]["feature_dates"][:1])
    met = m["metrics"]["level2-trial-7d"]
    assert {"qini", "auuc", "auuc_random", "ate", "gain_at"} <= set(met)
    assert met["rows"] == m["split"]["evaluate_rows"]
    assert m["propensity_weighted"] is True  # 0.8 and 0.5 by tier
    assert m["rows"]["total"] == m["split"]["train_rows"] + m["split"]["evaluate_rows"]
    assert m["sources"][0]["id"] == CAMPAIGN and m["sources"][0]["window_trading_days"] == 20
    folder = ws.root / "models" / "uplift" / m["version"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["model.json", *[f"arm0.{p}.txt" for p in ("mu0", "mu1", "tau0", "tau1", "e")]])
    assert "status" not in m["features"] and "days_since_last_trade_date" in m["features"]
    assert "uplift-" in _cli(ws, "uplift", "list")


def test_score_stores_a_snapshot_an_audience_can_rank(ws: Workspace, trained: dict, tmp_path: Path) -> None:
    out = _cli(ws, "uplift", "score", "--out", str(tmp_path / "u.parquet"))
    assert f"at {DATA_END.isoformat()}" in out and "top_percent(uplift, 20)" in out
    got = pq.read_table(tmp_path / "u.parquet")
    assert got.column_names == ["customer_id", "uplift_level2_trial_7d"]
    assert got.num_rows > 100 and got.column(1).null_count == 0
    _cli(ws, "uplift", "score", "--as-of", DATA_END.isoformat(), "--out", str(tmp_path / "u.csv"))
    assert (tmp_path / "u.csv").read_text(encoding="utf-8").splitlines()[0] == '"customer_id","uplift_level2_trial_7d"'

    from panhuo.segments.audience import audience
    from panhuo.segments.compiler import compile_rule

    con = connect(ws.settings.engine, ws.tmp_dir)
    aud = audience(ws, con, DATA_END)
    t = aud.table
    scored = t.filter(t.uplift.notnull()).count().execute()
    assert scored == got.num_rows
    top = t.filter(compile_rule("top_percent(uplift, 20)", t, aud.symbols))
    n = top.count().execute()
    assert abs(n - 0.2 * scored) <= 2
    chosen = set(top.customer_id.execute())
    ranked = got.sort_by([("uplift_level2_trial_7d", "descending")]).column("customer_id").to_pylist()
    assert chosen == set(ranked[:n])  # they are the highest ones
    assert top.uplift.max().execute() == pytest.approx(pc.max(got.column(1)).as_py())


def test_evaluate_gives_three_estimates_with_intervals(ws: Workspace, trained: dict) -> None:
    _common.STATE._ws = None
    result = CliRunner().invoke(app, ["--workspace", str(ws.root), "uplift", "evaluate", "--policy", "top:20",
                                      "--campaign", CAMPAIGN, "--window", "20", "--format", "json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["format"] == "panhuo.ope/1" and res["policy"] == "top:20" and res["in_sample"] is True
    cand = res["candidate"]
    assert cand["share_contacted"] == pytest.approx(0.2, abs=0.01)
    for m in ("ips", "snips", "dr"):
        e = cand[m]
        assert 0 <= e["ci_low"] <= e["estimate"] <= e["ci_high"] <= 1
    nobody = res["contact_nobody"]
    assert nobody["share_contacted"] == 0 and nobody["matched"] > 0
    assert 0 < res["logged_value"] < 1 and res["rows"] == sum(src["rows"] for src in res["sources"])
    out = _cli(ws, "uplift", "evaluate", "--policy", "uplift>0", "--campaign", CAMPAIGN, "--window", "20")
    assert "IPS" in out and "SNIPS" in out and "DR" in out and "optimistic" in out


@pytest.mark.parametrize(("campaign", "error", "reason"), [
    ("no-such-campaign", MeasureError, "unknown campaign 'no-such-campaign'"),
    ("all-treated", UpliftError, "not randomized"),
    ("all-holdout", UpliftError, "no treated rows"),
    ("tiny", UpliftError, "too few rows"),
])
def test_training_errors_are_clear_and_store_nothing(ws: Workspace, trained: dict, campaign: str, error: type,
                                                     reason: str) -> None:
    before = len(list_uplift_models(ws))
    with pytest.raises(error, match=reason):
        _cli(ws, "uplift", "train", "--campaign", campaign, "--rounds", "5", "--threads", "1")
    assert len(list_uplift_models(ws)) == before


def test_usage_errors(ws: Workspace, trained: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--campaign ID"):
        _cli(ws, "uplift", "train")
    with pytest.raises(ConfigError, match=r"\.parquet or \.csv"):
        _cli(ws, "uplift", "score", "--out", str(tmp_path / "u.xlsx"))
    with pytest.raises(UpliftError, match="no uplift model version 'uplift-nope'"):
        _cli(ws, "uplift", "score", "--model", "uplift-nope")
    with pytest.raises(UpliftError, match="before the model's first training contact"):
        _cli(ws, "uplift", "score", "--as-of", "2026-01-05")
    assert not (tmp_path / "u.xlsx").exists()


def test_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([PANHUO, "-w", str(tmp_path / "empty"), "uplift", "score"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 2
    assert "error:" in done.stderr


@pytest.fixture(scope="module")
def playbook_model(ws: Workspace, trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two runs of a two-arm playbook (30 Sep and 16 Oct 2026), then a model trained on its assignments."""
    from panhuo.runs.engine import run_playbook
    from panhuo.scores.propensity_data import ensure_tags
    from tests.runs.conftest import SHANGHAI, make_live

    con = connect(ws.settings.engine, ws.tmp_dir)
    make_live(ws, tmp_path_factory.mktemp("pb"), holdout=0.3,
              arms="- {id: news, items: [news-daily]}\n- {id: l2, items: [level2-trial-7d]}")
    for day in (dt.date(2026, 9, 30), dt.date(2026, 10, 16)):
        ensure_tags(ws, con, day)
        run_playbook(ws, "test-wake", day, now=dt.datetime.combine(day, dt.time(10), tzinfo=SHANGHAI))
    out = _cli(ws, "uplift", "train", "--playbook", "test-wake", "--learner", "t", "--rounds", "30", "--threads", "1")
    assert "time split: trained on contacts up to 2026-09-30" in out, out
    return list_uplift_models(ws)[-1]


def test_a_playbooks_assignments_train_one_model_per_arm(ws: Workspace, playbook_model: dict) -> None:
    m = playbook_model
    assert m["learner"] == "t" and m["arms"] == ["l2", "news"]
    assert m["split"]["evaluate_from"] == "2026-10-16"
    for arm in ("l2", "news"):
        assert m["metrics"][arm]["rows"] > 100 and "qini" in m["metrics"][arm]
    (src,) = m["sources"]
    assert src["kind"] == "playbook" and src["id"] == "test-wake" and src["event"] == "trade"
    assert src["global_control_left_out"] > 0  # outside the playbook's randomization
    assert m["rows"]["control"] + m["rows"]["treated"] == src["rows"] == m["rows"]["total"]

    _common.STATE._ws = None
    result = CliRunner().invoke(app, ["--workspace", str(ws.root), "uplift", "evaluate", "--policy", "top:20",
                                      "--playbook", "test-wake", "--format", "json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["policy_arms"] == ["l2", "news"] and res["candidate"]["matched"] > 0
    with pytest.raises(OPEError, match=r"none of its arms \(level2-trial-7d\) was used in these contacts"):
        _cli(ws, "uplift", "evaluate", "--policy", "uplift>0", "--playbook", "test-wake", "--model", trained_version(ws))
    with pytest.raises(OPEError, match="arm 'level2-trial-7d' was never used in these contacts"):
        _cli(ws, "uplift", "evaluate", "--policy", "all:level2-trial-7d", "--playbook", "test-wake")
    with pytest.raises(OPEError, match="unknown arm 'news'"):
        _cli(ws, "uplift", "evaluate", "--policy", "all:news", "--playbook", "test-wake", "--model", trained_version(ws),
             "--campaign", CAMPAIGN)


def trained_version(ws: Workspace) -> str:
    return list_uplift_models(ws)[0]["version"]  # the campaign's model: arm level2-trial-7d
