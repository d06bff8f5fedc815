"""Smoke test of ``benchmarks/bench_uplift.py``: a 20,000-row run finishes and prints its figures.

No timing is asserted and causalml is not run (``--no-causalml``): the 1M-row comparison is the
benchmark's own run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]


def test_bench_uplift_smoke_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_uplift.py"), "--rows", "20000", "--eval-rows", "5000",
         "--rounds", "10", "--threads", "1", "--no-causalml", "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in ("load average before", "panhuo T-learner:", "panhuo X-learner:", "Qini", "load average after"):
        assert line in proc.stdout, out
