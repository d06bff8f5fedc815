"""Smoke test of ``benchmarks/bench_delivery.py``: a few hundred messages on SQLite, both contenders.

It checks the delivery benchmark still runs end to end: the set-up (workspace, outbox rows, customers,
the requests file), ``panhuo provider-sim`` as its own process, the bare httpx loop, the bare loop with
panhuo's own HTTP client and ``panhuo deliver --once`` each in a subprocess, the simulator's counts (every key delivered once, no
duplicate) and the store's (every row sent). No rate is asserted (the machine is shared); ``--no-record``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
N = 300


def test_bench_delivery_smoke_on_sqlite() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_delivery.py"), "--messages", str(N), "--store", "sqlite",
         "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"set-up: {N} outbox rows on sqlite" in proc.stdout, out
    for name in ("bare", "bare-lean", "panhuo"):
        m = re.search(rf"^{name}: ([\d,]+) messages/s in [\d.]+s, peak RSS [\d,]+ MiB \(sampled [\d,]+ MiB\), .*"
                      rf"delivered {N} unique, duplicates 0$", proc.stdout, re.MULTILINE)
        assert m is not None, out
        assert int(m.group(1).replace(",", "")) > 0
    assert f"store after panhuo: {{'sent': {N}}}" in proc.stdout, out
    assert re.search(r"^target panhuo / bare loop rate: [\d.]+x \(goal >= 0\.8x\) (met|NOT met)$", proc.stdout,
                     re.MULTILINE), out
    assert re.search(r"^target panhuo / bare lean-client loop rate: [\d.]+x", proc.stdout, re.MULTILINE), out
