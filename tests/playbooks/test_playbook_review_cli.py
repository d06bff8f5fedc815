"""``panhuo playbook validate|add`` run the benefit check and the content review (typer CliRunner, in process):
every issue names file, line and field, and add stores nothing when there is one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panhuo.cli import _common
from panhuo.cli.main import app

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
STARTERS = sorted((REPO / "playbooks").glob("*.yaml"))
IPO = (REPO / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
RESCUE = (REPO / "playbooks" / "rescue-effective-to-sleeping.yaml").read_text(encoding="utf-8")
DORMANT = (REPO / "playbooks" / "dormant-activation-invite.yaml").read_text(encoding="utf-8")


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    _common.STATE._ws = None  # the CLI caches its workspace per process
    yield tmp_path / "ws"
    _common.STATE._ws = None


def _cli(ws: Path, *args: str) -> tuple[int, str]:
    _common.STATE._ws = None
    result = CliRunner().invoke(app, ["--workspace", str(ws), *args], env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.output.split())


def _write(tmp: Path, name: str, text: str) -> Path:
    f = tmp / name
    f.write_text(text, encoding="utf-8")
    return f


def _line(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_every_starter_validates_and_a_missing_workspace_is_not_created(ws: Path) -> None:
    code, out = _cli(ws, "playbook", "validate", *map(str, STARTERS), "--as-of", "2026-11-24")
    assert code == 0, out
    assert out.count("ok ") == len(STARTERS)
    assert not ws.exists(), "validate reads a workspace, it does not create one"


def test_unknown_expired_and_risky_benefits_name_file_line_field(ws: Path, tmp_path: Path) -> None:
    typo = IPO.replace("- {id: level2-trial, items: [level2-trial-7d]}", "- {id: level2-trial, items: [level2-trail-7d]}")
    f = _write(tmp_path, "typo.yaml", typo)
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2
    assert (f"{f} line {_line(typo, 'level2-trail-7d')}, field method.arms[1].items[0]: unknown benefit "
            f"'level2-trail-7d' (did you mean level2-trial-7d") in out

    ipo = _write(tmp_path, "ipo.yaml", IPO)  # level2-trial-7d is valid to 2027-12-31
    code, out = _cli(ws, "playbook", "validate", str(ipo), "--as-of", "2028-01-03")
    assert code == 2
    line = _line(IPO, "items: [ipo-guide-video, level2-trial-7d]")
    assert f"{ipo} line {line}, field benefit.items[1]: benefit 'level2-trial-7d' expired on 2027-12-31" in out
    assert "field method.arms[1].items[0]: benefit 'level2-trial-7d' expired" in out
    assert _cli(ws, "playbook", "validate", str(ipo), "--as-of", "2025-06-01")[0] == 0, "not yet valid is fine"

    coupon = DORMANT.replace("items: [activation-guide]", "items: [activation-guide, commission-coupon-30d]")
    f = _write(tmp_path, "dormant.yaml", coupon)
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2
    assert (f"{f} line {_line(coupon, 'commission-coupon-30d')}, field benefit.items[1]: benefit "
            f"'commission-coupon-30d' is a commission_coupon rated R2: a dormant-account playbook") in out

    fund = RESCUE.replace("items: [commission-coupon-30d, market-weekly-news]",
                          "items: [commission-coupon-30d, market-weekly-news, new-fund-intro]")
    f = _write(tmp_path, "rescue.yaml", fund)
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2
    assert ("field benefit.items[2]: benefit 'new-fund-intro' is a product rated R3: a product offer needs "
            "purpose: product (not retention)") in out
    assert "commission-coupon-30d" not in out, "a coupon in a retention playbook is fine (suitability applies)"


def test_content_issues_name_file_line_field(ws: Path, tmp_path: Path) -> None:
    base = IPO.split("\ncontent:")[0].rstrip("\n") + "\n"
    bad = base + """content:
  app_push:
    title: 今日新股申购，抓紧时间查看申购规则与中签知识
    body: "{{ benefit_name }}：{{ totl_assets }}"
  sms:
    template: "新股申购稳 赚，{{ benefit_name }}"
"""
    f = _write(tmp_path, "bad.yaml", bad)
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2
    assert (f"{f} line {_line(bad, 'totl_assets')}, field content.app_push.body: unknown variable 'totl_assets' "
            f"(did you mean 'total_assets'?)") in out
    assert f"{f} line {_line(bad, '稳 赚')}, field content.sms.template: forbidden wording '稳赚'" in out
    assert (f"{f} line {_line(bad, 'title:')}, field content.app_push.title: push title fixed text is 22 characters, "
            f"more than content.push_title_max = 20") in out
    assert "1 of 1 playbook file(s) invalid" in out

    named = base.replace("name: 新股申购日唤醒沉睡客户", "name: 新股申购保本理财")
    f = _write(tmp_path, "named.yaml", named)
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2 and f"{f} line {_line(named, 'name:')}, field name: forbidden wording '保本'" in out


def test_workspace_catalogue_and_settings_are_used(ws: Path, tmp_path: Path) -> None:
    text = IPO.replace("items: [ipo-guide-video, level2-trial-7d]", "items: [ipo-guide-video, level2-trial-7d, ipo-faq]")
    f = _write(tmp_path, "ipo.yaml", text)
    assert _cli(tmp_path / "nows", "playbook", "validate", str(f))[0] == 2  # no workspace: the starter catalogue
    (ws / "benefits").mkdir(parents=True)
    (ws / "benefits" / "faq.yaml").write_text(
        "items:\n  - id: ipo-faq\n    kind: news\n    name: {zh: 新股申购问答, en: IPO FAQ}\n    unit_cost: 0\n"
        "    valid: {from: 2026-01-01}\n", encoding="utf-8")
    (ws / "panhuo.yaml").write_text("content:\n  forbidden_phrases: [保本, 中签知识]\n", encoding="utf-8")
    code, out = _cli(ws, "playbook", "validate", str(f), "--as-of", "2026-11-24")
    assert code == 2 and "ipo-faq" not in out  # the workspace catalogue knows it
    assert "field content.app_push.body: forbidden wording '中签知识'" in out  # the workspace's phrase list


def test_add_stores_nothing_on_an_issue_and_stores_a_clean_file(ws: Path, tmp_path: Path) -> None:
    assert _cli(ws, "users", "add", "root", "--role", "admin")[0] == 0
    assert _cli(ws, "users", "add", "ops", "--role", "operator", "--as", "root")[0] == 0
    typo = IPO.replace("items: [ipo-guide-video, level2-trial-7d]", "items: [ipo-guide-vidoe, level2-trial-7d]")
    f = _write(tmp_path, "typo.yaml", typo)
    code, out = _cli(ws, "playbook", "add", str(f), "--as", "ops", "--as-of", "2026-11-24")
    assert code == 2
    assert f"{f} line {_line(typo, 'ipo-guide-vidoe')}, field benefit.items[0]: unknown benefit 'ipo-guide-vidoe'" in out
    assert f"1 issue(s) in {f}: nothing added" in out
    code, out = _cli(ws, "playbook", "list")
    assert code == 0 and "Playbooks 策略 (0)" in out
    code, out = _cli(ws, "audit", "list")
    assert "playbook.create" not in out
    code, out = _cli(ws, "playbook", "add", str(REPO / "playbooks" / "ipo-day-wake-sleeping.yaml"), "--as", "ops",
                     "--as-of", "2026-11-24")
    assert code == 0 and "added new playbook ipo-day-wake-sleeping v1 (draft)" in out
