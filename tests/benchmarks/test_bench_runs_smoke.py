"""Smoke test of ``benchmarks/bench_runs.py``: a 2,000-candidate run on SQLite finishes and prints its figures.

It checks that the run-engine benchmark still runs end to end through the public ``run_playbook`` API
(synthetic tags, template store with a live playbook, the contender in its own subprocess, the outbox
digest, the report); PostgreSQL and the COPY baseline are left out (``--only panhuo-sqlite``) so it
needs no server. No timing is asserted. The tags are cached under ``benchmarks/data/runs-2000-42``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_smoke_on_sqlite() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_runs.py"), "--customers", "2000", "--repeat", "1",
         "--only", "panhuo-sqlite", "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in ("runs on SQLite", "first outbox row (SQLite)", "panhuo run_playbook (SQLite)"):
        assert line in proc.stdout, out
    assert "ratio runs panhuo/copy" not in proc.stdout, out  # PostgreSQL contenders were not asked for
    funnel = re.search(r"^funnel: candidates 2,000, .* sends ([\d,]+)$", proc.stdout, re.MULTILINE)
    assert funnel is not None, out
    sends = int(funnel.group(1).replace(",", ""))
    assert 0 < sends < 2000  # the guardrails and the holdout removed some, most of the rest are sends
    assert f"all contenders hold the same {sends:,} outbox rows" in proc.stdout, out
