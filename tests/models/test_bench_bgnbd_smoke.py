"""Smoke test of ``benchmarks/bench_bgnbd.py``: a tiny run with the scipy fallback reference prints its ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_bgnbd_runs_and_prints_the_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_bgnbd.py"), "--customers", "300", "--repeat", "1",
         "--reference", "nelder-mead"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "panhuo BetaGeoModel:" in proc.stdout and "ratio nelder-mead/panhuo:" in proc.stdout, out
    assert "max parameter difference" in proc.stdout, out
