"""A load killed with SIGKILL at any point leaves the previous load in force, byte for byte."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PANHUO
from tests.contract.conftest import GOOD, warehouse_fingerprint


def _big_input(folder: Path, trades: int) -> None:
    folder.mkdir()
    for p in GOOD.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    ids = ["C0001", "C0002", "C0003", "C0004"]
    with open(folder / "trades.csv", "w", encoding="utf-8") as fh:
        fh.write("customer_id,trade_date,market,symbol,asset_class,side,quantity,amount,commission\n")
        for i in range(trades):
            fh.write(f"{ids[i % 4]},2026-{1 + i % 12:02d}-{1 + i % 28:02d},SH,600{i % 1000:03d},stock,"
                     f"{'buy' if i % 2 else 'sell'},{100 + i % 900},{1000 + i % 99999}.{i % 100:02d},5.00\n")


def _current_load(ws: Path) -> dict[str, str]:
    current = (ws / "warehouse" / "CURRENT").read_text().strip()
    files = warehouse_fingerprint(ws / "warehouse" / "loads" / current)
    return {"CURRENT": current, **files}


def _assert_complete(ws: Path, load_id: str) -> None:
    import json

    import pyarrow.parquet as pq

    folder = ws / "warehouse" / "loads" / load_id
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["tables"]) >= {"customers", "balances", "trades", "app_events", "contact_permissions"}
    for rec in manifest["tables"].values():
        assert pq.ParquetFile(folder / rec["file"]).metadata.num_rows == rec["rows"]


@pytest.mark.slow
def test_sigkill_mid_load_leaves_previous_load_in_force(tmp_path):
    ws = tmp_path / "ws"
    first = subprocess.run([PANHUO, "--workspace", str(ws), "ingest", str(GOOD)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = _current_load(ws)
    big = tmp_path / "big"
    _big_input(big, 300_000)
    rng = random.Random(20261125)
    for _ in range(5):
        proc = subprocess.Popen([PANHUO, "--workspace", str(ws), "ingest", str(big)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 6.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = _current_load(ws)
        if after["CURRENT"] != before["CURRENT"]:
            # The kill landed after the commit point (or the load finished first): the new load must be
            # complete, every table's file present with the rows its manifest records.
            _assert_complete(ws, after["CURRENT"])
            before = after
        assert _current_load(ws) == before
    done = subprocess.run([PANHUO, "--workspace", str(ws), "ingest", str(big)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loads = ws / "warehouse" / "loads"
    assert not [p for p in loads.iterdir() if p.name.endswith(".staging")], "killed staging folders were not cleaned"
    assert _current_load(ws)["CURRENT"] != before["CURRENT"]
