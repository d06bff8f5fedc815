"""``panhuo calendar`` end to end, through the installed console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = REPO / ".venv" / "bin" / "panhuo"
PANHUO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "panhuo.cli.main"]


def run(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("PANHUO_HOME", None)
    return subprocess.run(
        [*PANHUO, "--workspace", str(workspace), "calendar", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def test_check_covered_year(ws: Path) -> None:
    r = run(ws, "check", "--year", "2025", "--today", "2026-11-25")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "covered by exchange_calendars" in out
    assert "《关于2025年部分节假日休市安排的通知》" in out
    assert "243 trading days" in out
    assert "2025-01-28 .. 2025-02-04" in out and "Spring Festival" in out
    assert "2025-10-01 .. 2025-10-08" in out
    assert "WARNING" not in out
    assert (ws / "panhuo.yaml").exists()  # the workspace was created


def test_check_2024_shows_the_exchange_only_closure(ws: Path) -> None:
    r = run(ws, "check", "--year", "2024", "--today", "2026-11-25")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "242 trading days" in r.stdout
    assert "2024-02-09 Fri: closed by the exchange" in r.stdout


def test_check_uncovered_year_warns_and_exits_1(ws: Path) -> None:
    r = run(ws, "check", "--year", "2027", "--today", "2026-11-25")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "WARNING: 2027 IS NOT COVERED" in r.stdout
    assert "2005-2026" in r.stdout


def test_check_in_december_warns_about_next_year(ws: Path) -> None:
    r = run(ws, "check", "--year", "2026", "--today", "2026-12-01")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "242 trading days" in r.stdout
    assert "WARNING: NEXT YEAR (2027) IS NOT COVERED YET" in r.stdout
    r = run(ws, "check", "--year", "2026", "--today", "2026-11-30")
    assert r.returncode == 0, r.stdout + r.stderr


def test_brokerage_override_file_from_the_workspace(ws: Path) -> None:
    assert run(ws, "check", "--year", "2025", "--today", "2026-11-25").returncode == 0  # creates panhuo.yaml
    closures = [
        "2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11", "2027-10-01",
    ]  # fmt: skip
    (ws / "closures.yaml").write_text(
        textwrap.dedent(
            f"""\
            years:
              2027:
                source: test fixture, not a real notice
                closures: [{", ".join(closures)}]
            """
        ),
        encoding="utf-8",
    )
    settings = (ws / "panhuo.yaml").read_text(encoding="utf-8")
    assert "override_file: null" in settings
    (ws / "panhuo.yaml").write_text(settings.replace("override_file: null", "override_file: closures.yaml"))
    r = run(ws, "check", "--year", "2027", "--today", "2026-12-15")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "closures.yaml (full list of closures)" in r.stdout
    assert "254 trading days" in r.stdout
    r = run(ws, "next", "2026-12-31")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2027-01-04" in r.stdout


def test_bad_override_file_is_reported_with_file_and_field(ws: Path) -> None:
    assert run(ws, "check", "--today", "2026-11-25").returncode == 0
    (ws / "closures.yaml").write_text("years:\n  2025:\n    source: test notice\n    add_closures: [2025-10-11]\n")
    settings = (ws / "panhuo.yaml").read_text(encoding="utf-8")
    (ws / "panhuo.yaml").write_text(settings.replace("override_file: null", "override_file: closures.yaml"))
    r = run(ws, "check", "--year", "2025")
    assert r.returncode == 2
    assert "closures.yaml: field years.2025.add_closures.0" in r.stderr
    assert "Saturday" in r.stderr


def test_days_and_next(ws: Path) -> None:
    r = run(ws, "days", "--from", "2025-01-01", "--to", "2025-12-31")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "243 trading days" in r.stdout
    r = run(ws, "days", "--from", "2025-10-01", "--to", "2025-10-09", "--list")
    assert ": 1 trading day (" in r.stdout and "2025-10-09 Thu" in r.stdout
    r = run(ws, "next", "2025-09-30")
    assert r.returncode == 0 and "+1 trading day: 2025-10-09" in r.stdout
    r = run(ws, "next", "2025-10-09", "--n", "-1")
    assert "-1 trading day: 2025-09-30" in r.stdout


def test_questions_about_an_uncovered_year_fail_with_exit_2(ws: Path) -> None:
    r = run(ws, "next", "2026-12-31")
    assert r.returncode == 2
    assert "outside the trading calendar (2005-2026)" in r.stderr
    r = run(ws, "days", "--from", "2027-01-01", "--to", "2027-01-31")
    assert r.returncode == 2
    r = run(ws, "days", "--from", "2025-13-01", "--to", "2025-12-31")
    assert r.returncode == 2 and "--from" in r.stderr
