"""Smoke test of ``benchmarks/bench_report.py``: a few thousand assignments, set-up, report, renderings.

It checks the report benchmark still runs end to end (the load, the store with runs, assignments,
outbox and ledger rows, ``make_report`` and the three renderings) and that every assignment was
measured with a closed window. No time is asserted (the machine is shared); ``--no-record``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
N = 3000


def test_bench_report_smoke() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_report.py"), "--assignments", str(N),
                           "--no-record"], cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(rf"^set-up: {N:,} assignments \(treated [\d,]+, holdout [\d,]+, global_control [\d,]+\)",
                     proc.stdout, re.MULTILINE), out
    m = re.search(rf"^report: {N:,} assignments in ([\d.]+)s \(outcomes [\d.]+s, estimates [\d.]+s", proc.stdout,
                  re.MULTILINE)
    assert m is not None and float(m.group(1)) > 0, out
    assert re.search(r"^check: treated [\d,]+, holdout [\d,]+, groups \d+ \(tiers: [a-z_]+(, [a-z_]+)*\)", proc.stdout,
                     re.MULTILINE), out  # the tier breakdown is there
    assert re.search(rf"^target report for {N:,} assignments < 30s: [\d.]+s (met|NOT met)$", proc.stdout,
                     re.MULTILINE), out
