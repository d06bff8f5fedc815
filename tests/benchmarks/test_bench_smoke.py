"""Smoke test of ``benchmarks/run.py``: a 2,000-customer run finishes, agrees, and prints its ratios.

It checks that the benchmark still runs end to end (generation, ingest vs COPY, every status
contender in its own subprocess, the agreement check, the report); it never asserts on timings.
The generated data is cached under ``benchmarks/data/2000-42`` (git-ignored), so later runs are faster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_and_prints_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--customers", "2000", "--repeat", "1", "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in ("ratio ingest/copy", "ratio ibis/sql", "ratio ibis/polars", "ratio pandas/ibis", "peak RSS"):
        assert line in proc.stdout, out
    assert "all contenders agree on every customer's status" in proc.stdout, out
