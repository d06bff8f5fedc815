"""Smoke test of ``benchmarks/bench_tags.py``: a 2,000-customer run finishes, all contenders agree, ratios print.

No timing is asserted. The data and workspace are cached under ``benchmarks/data/2000-42``
(git-ignored; generated, ingested and given a status on the first run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]


def test_bench_tags_smoke_runs_and_agrees_on_every_tag() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_tags.py"), "--customers", "2000", "--repeat", "1",
         "--no-record"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for line in ("ratio tags panhuo/sql", "ratio tags panhuo/polars", "peak RSS"):
        assert line in proc.stdout, out
    from panhuo.tags import TAGS

    assert f"all contenders agree on every tag of every customer ({len(TAGS)} tags)" in proc.stdout, out
