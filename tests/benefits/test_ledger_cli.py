"""``panhuo benefits stock [ID]``: catalogue limits against what was issued, money in RMB (subprocess, SQLite)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from panhuo.benefits import load_catalogue
from panhuo.benefits.ledger import reserve
from panhuo.config import Workspace
from panhuo.store import open_store
from tests.benefits.conftest import AT, item, make_runs
from tests.conftest import PANHUO

__all__: list[str] = []

EXTRA = """items:
  - id: mini-trial
    kind: level2_trial
    name: {zh: 迷你体验卡, en: Mini trial}
    unit_cost: "1234.56"
    stock: 3
    budget: "10000.00"
    valid: {from: 2026-01-01}
"""


def _panhuo(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([PANHUO, "-w", str(ws.root), *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def _row(out: str, bid: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if f" {bid} " in ln)
    return [c.strip() for c in line.strip("│ ").split("│")]


def test_stock_shows_limits_issued_and_remaining(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    (ws.root / "benefits").mkdir()
    (ws.root / "benefits" / "mini.yaml").write_text(EXTRA, encoding="utf-8")
    cat = load_catalogue(ws)
    store = open_store(ws)
    try:
        runs = make_runs(store)
        with store.session() as s:
            reserve(s, cat.get("mini-trial"), runs[0], ["a", "b", "c", "d"], at=AT)
            reserve(s, cat.get("level2-trial-7d"), runs[0], ["a", "b"], at=AT)
            reserve(s, item("gone-item", cost="0.50", stock=9), runs[0], ["a"], at=AT)  # not in the catalogue
    finally:
        store.dispose()
    out = _panhuo(ws, "benefits", "stock")
    assert out.returncode == 0, out.stderr
    assert _row(out.stdout, "mini-trial") == ["mini-trial", "1,234.56", "3", "3", "0", "10,000.00", "3,703.68",
                                              "6,296.32", "0", "exhausted"]
    assert _row(out.stdout, "level2-trial-7d") == ["level2-trial-7d", "3.50", "100,000", "2", "99,998",
                                                   "300,000.00", "7.00", "299,993.00", "85,712", "ok"]
    assert _row(out.stdout, "ipo-guide-video")[1:] == ["0.00", "-", "0", "-", "-", "0.00", "-", "-", "ok"]
    assert _row(out.stdout, "gone-item")[3:5] == ["1", "8"] and "not in catalogue" in out.stdout
    one = _panhuo(ws, "benefits", "stock", "mini-trial")
    assert one.returncode == 0 and "3,703.68" in one.stdout and "exhausted" in one.stdout
    assert "level2-trial-7d" not in one.stdout
    missing = _panhuo(ws, "benefits", "stock", "nope")
    assert missing.returncode == 2 and "no benefit 'nope'" in missing.stderr
