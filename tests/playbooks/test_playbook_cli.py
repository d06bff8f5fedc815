"""``panhuo users|playbook|audit|store`` end to end through the installed console script, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from panhuo.store.db import HEAD

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = REPO / ".venv" / "bin" / "panhuo"
PANHUO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "panhuo.cli.main"]
IPO = REPO / "playbooks" / "ipo-day-wake-sleeping.yaml"
PID = "ipo-day-wake-sleeping"


class Cli:
    def __init__(self, ws: Path) -> None:
        self.ws = ws

    def __call__(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        env.pop("PANHUO_HOME", None)
        env.pop("PANHUO_USER", None)
        if user is not None:
            env["PANHUO_USER"] = user
        return subprocess.run([*PANHUO, "--workspace", str(self.ws), *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    def ok(self, *args: str, user: str | None = None) -> str:
        r = self(*args, user=user)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def refused(self, *args: str, match: str, code: int = 2) -> None:
        r = self(*args)
        assert r.returncode == code, r.stdout + r.stderr
        assert match in " ".join((r.stdout + r.stderr).split()), r.stdout + r.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    ws = tmp_path / "ws"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        ws.mkdir()
        (ws / "panhuo.yaml").write_text(yaml.safe_dump({"store_url": url}), encoding="utf-8")
    return Cli(ws)


def test_review_and_go_live_end_to_end(cli: Cli) -> None:
    assert "added user root (admin)" in cli.ok("users", "add", "root", "--role", "admin", "--display", "管理员")
    cli.refused("users", "add", "ops", "--role", "operator", match="no acting user: pass --as USER or set PANHUO_USER")
    cli.ok("users", "add", "ops", "--role", "operator", "--as", "root")
    cli.ok("users", "add", "cmp", "--role", "compliance", user="root")  # PANHUO_USER works like --as
    cli.ok("users", "add", "cmpops", "--role", "compliance", "--role", "operator", "--as", "root")
    cli.refused("users", "add", "x", "--role", "viewer", "--as", "ops", match="needs the admin role")
    assert "cmpops" in cli.ok("users", "list")

    cli.refused("playbook", "add", str(IPO), match="no acting user")
    assert "added new playbook ipo-day-wake-sleeping v1 (draft)" in cli.ok("playbook", "add", str(IPO), "--as", "cmpops")
    cli.ok("playbook", "submit", PID, "--as", "cmpops")
    cli.refused("playbook", "approve", PID, "--as", "cmpops", match="four eyes: 'cmpops' wrote version 1")
    cli.refused("playbook", "approve", PID, "--as", "ops", match="needs the compliance role")
    cli.refused("playbook", "approve", PID, "--as", "nobody", match="unknown user 'nobody'")
    cli.refused("playbook", "activate", PID, "--as", "ops", match="cannot activate a playbook that is in_review")
    assert "now approved" in cli.ok("playbook", "approve", PID, "--as", "cmp")
    assert "now live" in cli.ok("playbook", "activate", PID, "--as", "ops")
    listing = cli.ok("playbook", "list")
    assert PID in listing and "live" in listing
    assert "新股申购日唤醒沉睡客户" in cli.ok("playbook", "show", PID)
    audit = cli.ok("audit", "list")
    for action in ("user.add", "playbook.create", "playbook.submit", "playbook.approve", "playbook.activate"):
        assert action in audit
    assert "state: approved -> live" in audit
    assert "audit chain intact: 8 entries verified" in cli.ok("audit", "verify")
    assert f"revision {HEAD}" in cli.ok("store", "current")


def test_new_version_diff_reject_pause_retire(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "ws")
    cli.ok("users", "add", "root", "--role", "admin")
    cli.ok("users", "add", "ops", "--role", "operator", "--as", "root")
    cli.ok("users", "add", "cmp", "--role", "compliance", "--as", "root")
    cli.ok("playbook", "add", str(IPO), "--as", "ops")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(IPO.read_text(encoding="utf-8").replace("holdout: 0.10", "holdout: 0.15"), encoding="utf-8")
    assert "version 2 of" in cli.ok("playbook", "add", str(v2), "--as", "ops")
    diff = cli.ok("playbook", "show", PID, "--diff", "1", "2")
    assert "-  holdout: 0.10" in diff and "+  holdout: 0.15" in diff
    assert "holdout: 0.10" in cli.ok("playbook", "show", PID, "--version", "1")
    cli.ok("playbook", "submit", PID, "--as", "ops")
    cli.refused("playbook", "reject", PID, "--as", "cmp", match="Missing option '--reason'")
    assert "now draft" in cli.ok("playbook", "reject", PID, "--reason", "措辞需修改", "--as", "cmp")
    cli.ok("playbook", "submit", PID, "--as", "ops")
    cli.ok("playbook", "approve", PID, "--as", "cmp")
    cli.ok("playbook", "activate", PID, "--as", "ops")
    assert "now paused" in cli.ok("playbook", "pause", PID, "--as", "cmp", "--reason", "投诉")
    assert "now retired" in cli.ok("playbook", "retire", PID, "--as", "ops")
    cli.refused("playbook", "activate", PID, "--as", "ops", match="cannot activate a playbook that is retired")
    cli.ok("users", "disable", "ops", "--as", "root")
    cli.refused("playbook", "add", str(v2), "--as", "ops", match="user 'ops' is disabled")


def test_validate_reports_file_line_field(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "ws")
    bad = tmp_path / "bad.yaml"
    bad.write_text(IPO.read_text(encoding="utf-8").replace("holdout: 0.10", "holdout: 0.9"), encoding="utf-8")
    r = cli("playbook", "validate", str(IPO), str(bad))
    assert r.returncode == 2
    assert f"ok {IPO}" in r.stdout
    line = next(i for i, t in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1) if "holdout" in t)
    assert f"{bad} line {line}, field method.holdout: must be between 0 and 0.5" in " ".join(r.stderr.split())
    cli.refused("playbook", "add", str(bad), "--as", "anyone", match="field method.holdout")


def test_tampered_audit_fails_verify(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "ws")
    cli.ok("users", "add", "root", "--role", "admin")
    cli.ok("users", "add", "ops", "--role", "operator", "--as", "root")
    con = sqlite3.connect(cli.ws / "panhuo.db")
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("""UPDATE audit_log SET "after" = '{"roles": ["admin"]}' WHERE seq = 2""")
    con.commit()
    con.close()
    r = cli("audit", "verify")
    assert r.returncode == 1 and "broken at seq 2" in r.stderr


def test_fresh_directory_works_for_every_store_command(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "brand-new")
    assert "(0)" in cli.ok("playbook", "list")
    assert "intact: 0 entries" in cli.ok("audit", "verify")
    assert (tmp_path / "brand-new" / "panhuo.db").exists()
