"""``panhuo segments`` end to end, through the console script in a subprocess, with a hand-built tags
snapshot in a temporary workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.segments.conftest import write_tags

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = REPO / ".venv" / "bin" / "panhuo"
PANHUO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "panhuo.cli.main"]


def run(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("PANHUO_HOME", None)
    return subprocess.run([*PANHUO, "--workspace", str(ws), "segments", *args], capture_output=True, text=True,
                          env=env, timeout=180, check=False)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "segments").mkdir(parents=True)
    (root / "segments" / "vip.yaml").write_text(
        "name: vip\nzh: 贵宾沉睡\nen: sleeping VIP\nrule: status = 'sleeping' and total_assets_90d_ago >= 10000\n"
        "exclude: [dormant, 'age > 70']\ncap: 5\n", encoding="utf-8")
    return root


@pytest.fixture
def tags(tmp_path: Path) -> Path:
    return write_tags(tmp_path / "tags.parquet")


def test_list_and_show(ws: Path) -> None:
    r = run(ws, "list")
    assert r.returncode == 0, r.stderr
    assert "vip" in r.stdout and "贵宾沉睡" in r.stdout and "sleeping_alive" in r.stdout
    r = run(ws, "show", "vip")
    assert r.returncode == 0, r.stderr
    assert "exclude (segment dormant): dormant" in r.stdout and "cap: 5" in r.stdout
    assert "segments/vip.yaml line 1" in r.stdout


def test_count_export_and_tiers(ws: Path, tags: Path, tmp_path: Path) -> None:
    r = run(ws, "count", "sleeping", "--tags", str(tags), "--as-of", "2026-01-31")
    assert r.returncode == 0, r.stderr
    assert "sleeping as of 2026-01-30:" in r.stdout
    r = run(ws, "count", "vip", "--tags", str(tags))
    assert r.returncode == 0 and "vip as of 2026-01-30: 5 customers" in r.stdout, r.stdout + r.stderr
    out = tmp_path / "vip.parquet"
    r = run(ws, "export", "vip", "--out", str(out), "--columns", "total_assets,phone", "--tags", str(tags))
    assert r.returncode == 0, r.stderr
    t = pq.read_table(out)
    assert t.column_names == ["customer_id", "total_assets", "phone"] and t.num_rows == 5
    assert all(p.startswith("138****") for p in t.column("phone").to_pylist())
    r = run(ws, "tiers", "--tags", str(tags))
    assert r.returncode == 0, r.stderr
    for word in ("高净值沉睡-仍活跃", "休眠户", "新开空户", "合计", "avg total assets", "100.0%"):
        assert word in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("count", "nosuch"), "unknown segment 'nosuch'"),
        (("count", "vip", "--as-of", "2020-01-01"), "no tags on or before 2020-01-01"),
        (("count", "vip", "--as-of", "2020-13-01"), "--as-of '2020-13-01'"),
        (("export", "vip", "--out", "x.txt"), "must end in .parquet or .csv"),
        (("export", "vip", "--out", "x.csv", "--columns", "total_asset"), "unknown tag 'total_asset'"),
        (("count", "sleeping_alive"), "tag 'p_alive' is not in this data"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(ws: Path, tags: Path, args: tuple[str, ...], needle: str) -> None:
    r = run(ws, *args, "--tags", str(tags))
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_a_broken_segment_file_is_reported_with_file_and_line(ws: Path, tags: Path) -> None:
    (ws / "segments" / "bad.yaml").write_text("name: bad\nzh: a\nen: b\nrule: x.__class__\n", encoding="utf-8")
    r = run(ws, "count", "vip", "--tags", str(tags))
    assert r.returncode == 2
    assert "segments/bad.yaml line 4, col 8: attribute access ('.') is not allowed" in r.stderr
