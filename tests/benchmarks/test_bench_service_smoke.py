"""Smoke test of ``benchmarks/bench_service.py``: a tiny brokerage, ``panhuo serve`` as its own process, a few
seconds of load from 10 clients. It checks the benchmark runs end to end (set-up cached under
``benchmarks/data/``, every endpoint answered without an error, the percentile table and the target line
printed). No latency is asserted (the machine is shared); ``--no-record``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_percentile_interpolates() -> None:
    from bench_service import percentile

    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0 and percentile([], 95) != percentile([], 95)  # NaN


def test_bench_service_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_service.py"), "--customers", "500", "--clients", "5",
         "--duration", "2", "--outbox", "200", "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "set-up: 500 customers, 200 past messages" in proc.stdout, out
    for name in ("customer", "segment", "tiers", "playbooks", "benefits", "tasks", "runs", "all"):
        m = re.search(rf"^{name}\s+([\d,]+)\s+(\d+)\s+[\d,.]+\s+[\d,]+\s+[\d,]+\s+[\d,]+$", proc.stdout, re.MULTILINE)
        assert m is not None, (name, out)
        assert int(m.group(1).replace(",", "")) > 0 and m.group(2) == "0", (name, out)
    assert re.search(r"^target p95 < 300 ms: (met|NOT met) \(p95 [\d,]+ ms, [\d,.]+ requests/s\)$", proc.stdout,
                     re.MULTILINE), out
