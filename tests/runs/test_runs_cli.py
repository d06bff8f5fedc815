"""``panhuo playbook dry-run`` and ``panhuo run`` end to end (subprocess, SQLite store)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from panhuo.config import Workspace
from tests.conftest import PANHUO
from tests.runs.conftest import AS_OF, make_live

__all__: list[str] = []


def _panhuo(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([PANHUO, "-w", str(ws.root), *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def test_dry_run_then_run_then_rerun(sqlite_ws: Workspace, tmp_path: Path) -> None:
    make_live(sqlite_ws, tmp_path, pid="draft-one", live=False)
    refused = _panhuo(sqlite_ws, "run", "draft-one", "--as-of", AS_OF.isoformat())
    assert refused.returncode == 2 and "is draft, not live" in refused.stderr
    pid = make_live(sqlite_ws, tmp_path)
    dry = _panhuo(sqlite_ws, "playbook", "dry-run", pid, "--as-of", AS_OF.isoformat())
    assert dry.returncode == 0, dry.stderr
    assert "nothing written" in dry.stdout and "after one_per_run" in dry.stdout and "sends" in dry.stdout
    run = _panhuo(sqlite_ws, "run", pid, "--as-of", "20260130", "--run-key", "k1", "--as", "ops")
    assert run.returncode == 0, run.stderr
    assert "run key k1" in run.stdout and "message(s) submitted" in run.stdout
    again = _panhuo(sqlite_ws, "run", pid, "--as-of", "2026-01-30", "--run-key", "k1")
    assert "0 message(s) submitted" in again.stdout and "already written" in again.stdout
