"""The foundation end to end through the real CLI, and the same results on DuckDB and PySpark."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.contract.ingest import ingest
from panhuo.generate import generate_brokerage
from panhuo.status.export import export_status
from panhuo.status.history import compute_status
from tests.conftest import PANHUO

AS_OF = dt.date(2026, 11, 24)


def _panhuo(*args: str, cwd: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PANHUO, *args], capture_output=True, text=True, cwd=cwd)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("brokerage")
    generate_brokerage(folder, customers=400, seed=11, as_of=AS_OF)
    return folder


def test_demo_runs_from_an_empty_directory(tmp_path):
    out = _panhuo("demo", "--customers", "500", "--as-of", "2026-11-24", cwd=tmp_path)
    assert "effective" in out.stdout and "有效户" in out.stdout
    # two starter playbooks went live through four eyes and ran at 10:30 on the as-of day, into the outbox
    flat = " ".join(out.stdout.split())  # Rich wraps long lines at the terminal width
    assert "Live playbooks at 2026-11-24" in flat
    assert flat.count("added by demo-ops, approved by demo-compliance, live") == 2
    assert "after benefit" in flat and "outbox sample of" in flat
    # step 7 delivered both runs through the provider simulator on loopback: a summary line per channel
    assert "deliver through the provider simulator on loopback" in flat
    lines = {ch: tuple(int(n) for n in counts) for ch, *counts in re.findall(
        r"delivered (\w+): sent (\d+), dead (\d+), tasked (\d+), opted out (\d+), deferred (\d+)", flat)}
    assert lines["call"][0] == 0 and lines["call"][2] > 0  # the advisor-call playbook's messages became tasks
    assert sum(sent for ch, (sent, *_) in lines.items() if ch != "call") > 0
    assert all(dead == deferred == 0 for _, dead, _, _, deferred in lines.values())
    sample = re.search(r"archive sample: (\w+) via sim to (\S+) at", flat)
    assert sample is not None
    if sample.group(1) == "sms":
        assert re.fullmatch(r"1\d\d\*{4}\d{4}", sample.group(2))  # the phone masked
    import sqlite3

    db = sqlite3.connect(tmp_path / ".panhuo" / "panhuo.db")
    runs = dict(db.execute("SELECT playbook_id, state FROM runs").fetchall())
    assert runs == {"rescue-effective-to-sleeping": "done", "advisor-call-high-value-sleeping": "done"}
    sends = db.execute("SELECT count(*), count(DISTINCT idempotency_key) FROM outbox WHERE content LIKE '{%'").fetchone()
    assert sends[0] == sends[1] == db.execute("SELECT sum(sends) FROM runs").fetchone()[0]
    status = dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    assert status == {k: v for k, v in {"sent": sum(v[0] for v in lines.values()),
                                         "tasked": lines["call"][2]}.items() if v}
    assert db.execute("SELECT count(*) FROM call_tasks").fetchone()[0] == lines["call"][2]
    assert db.execute("SELECT count(*) FROM message_archive").fetchone()[0] == sends[0]
    db.close()
    html = tmp_path / ".panhuo" / "reports" / "overview-2026-11-24.html"
    text = html.read_text(encoding="utf-8")
    assert "有效户" in text and "沉睡户" in text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), "the overview must not load anything remote"
    # the closed loop: 8 simulated weeks (own workspace), Thompson regret below an equal split's, then the report
    weeks = re.findall(r"week (\d) \((\d{4}-\d\d-\d\d)\): sim-weekly-wake (\d+) treated/(\d+) holdout", flat)
    assert [int(w[0]) for w in weeks] == list(range(1, 9)) and all(int(w[2]) > 0 for w in weeks)
    regret = re.search(r"closed loop sim-weekly-wake: cumulative expected regret ([\d.]+) vs ([\d.]+) for an equal "
                       r"split over 8 weeks", flat)
    assert regret is not None and 0 <= float(regret.group(1)) < float(regret.group(2))
    assert "## playbook sim-weekly-wake" in out.stdout and "## programme" in out.stdout
    assert "| guide-video |" in out.stdout and "incremental conversions (95% CI)" in out.stdout
    loop = sqlite3.connect(tmp_path / ".panhuo" / "closed-loop" / "panhuo.db")
    assert loop.execute("SELECT count(*), count(DISTINCT as_of) FROM runs WHERE playbook_id = 'sim-weekly-wake' "
                        "AND state = 'done'").fetchone() == (8, 8)
    assert loop.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0] == 0
    loop.close()
    summary = json.loads((tmp_path / ".panhuo" / "closed-loop" / "simulate" / "summary.json").read_text("utf-8"))
    assert summary["weeks_done"] == 8 and summary["cumulative_regret"]["sim-weekly-wake"]["policy"] == pytest.approx(
        float(regret.group(1)), abs=0.006)


def test_refused_load_leaves_status_export_unchanged(tmp_path, brokerage):
    ws = ["--workspace", str(tmp_path / "ws")]
    _panhuo(*ws, "ingest", str(brokerage))
    _panhuo(*ws, "status", "--as-of", "2026-11-24", "--out", str(tmp_path / "before.csv"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in brokerage.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    table = pq.read_table(bad / "customers.parquet")
    ids = table.column("customer_id").to_pylist()
    ids[7] = ids[3]  # a duplicate customer_id
    pq.write_table(table.set_column(0, "customer_id", __import__("pyarrow").array(ids)), bad / "customers.parquet")
    refused = _panhuo(*ws, "ingest", str(bad), ok=False)
    assert refused.returncode == 2
    assert "customers.parquet row 8, column customer_id" in refused.stderr
    _panhuo(*ws, "status", "--as-of", "2026-11-24", "--out", str(tmp_path / "after.csv"))
    assert (tmp_path / "before.csv").read_bytes() == (tmp_path / "after.csv").read_bytes()


def test_generate_ingest_status_through_the_cli(tmp_path):
    data = tmp_path / "csv"
    _panhuo("generate", "--customers", "300", "--seed", "3", "--out", str(data), "--format", "csv",
            "--encoding", "gbk", "--as-of", "2026-11-24")
    ws = ["--workspace", str(tmp_path / "ws")]
    loaded = _panhuo(*ws, "ingest", str(data))
    assert "gb18030" in loaded.stdout
    out = _panhuo(*ws, "status", "--as-of", "20261124", "--out", str(tmp_path / "s.parquet"))
    assert "Account status as of 2026-11-24" in out.stdout
    exported = pq.read_table(tmp_path / "s.parquet")
    assert exported.num_rows == 300
    assert set(exported.column("status").to_pylist()) <= {"effective", "sleeping", "dormant", "new_empty"}


@pytest.mark.spark
def test_ingest_and_status_are_identical_on_duckdb_and_spark(tmp_path, brokerage, spark_backend):
    exports = []
    for name, con in (("duckdb", None), ("spark", spark_backend)):
        ws = Workspace.open(tmp_path / name)
        if con is None:
            from panhuo.engines import connect

            con = connect(ws.settings.engine, ws.tmp_dir)
        ingest(ws, brokerage, con=con)
        compute_status(ws, con, AS_OF, backfill=True)
        out = tmp_path / f"{name}.csv"
        export_status(ws, con, out, AS_OF)
        exports.append(out.read_text(encoding="utf-8"))
    assert exports[0] == exports[1]
    assert exports[0].count("\n") == 401
