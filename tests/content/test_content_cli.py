"""End to end through the installed ``panhuo`` executable: benefits list/show/validate, playbook preview,
and approval refused for forbidden wording."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import PANHUO

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-24"
_STARTER = (REPO / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
IPO = _STARTER.split("\ncontent:")[0].rstrip("\n") + "\n"  # the starter without its own content section
CONTENT = """content:
  link: https://m.example.com/ipo
  sms:
    template: |
      尊敬的客户{{ phone }}，今日有新股申购，总资产{{ total_assets }}。{{ benefit_name }}：{{ link }}
  app_push:
    title: 今日新股申购
    body: "{{ brokerage_name }}：{{ benefit_name }}"
  wechat:
    template_id: OPENTM-IPO-01
    data: {first: 今日新股申购提醒, remark: "{{ benefit_name }}"}
"""


def _run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([PANHUO, *args], capture_output=True, text=True, env=env, check=False)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("content_cli")
    data, ws = root / "data", root / "ws"
    _run("generate", "--customers", "150", "--seed", "5", "--out", str(data), "--as-of", AS_OF)
    for args in (("ingest", str(data)), ("status", "--as-of", AS_OF), ("tags", "--as-of", AS_OF)):
        _run("--workspace", str(ws), *args)
    return ws


@pytest.fixture(scope="module")
def playbook(ws: Path) -> Path:
    f = ws.parent / "ipo.yaml"
    f.write_text(IPO + CONTENT,
                 encoding="utf-8")
    return f


def _phones(ws: Path) -> dict[str, str]:
    wh = ws / "warehouse"
    load = (wh / "CURRENT").read_text().strip()
    files = list((wh / "loads" / load).rglob("customers*.parquet"))
    t = pq.read_table(files[0], columns=["customer_id", "phone"]).to_pylist()
    return {str(r["customer_id"]): str(r["phone"]) for r in t}


def test_benefits_list_show_validate(ws: Path) -> None:
    listing = _run("--workspace", str(ws), "benefits", "list").stdout
    assert "level2-trial-7d" in listing and "R2" in listing
    shown = _run("--workspace", str(ws), "benefits", "show", "commission-coupon-30d").stdout
    assert "cash_rebate: false" in shown and "unit_cost_fen: 500" in shown
    bad = ws.parent / "bad.yaml"
    bad.write_text("items:\n  - id: x1\n    kind: product\n    name: {zh: a, en: b}\n    risk: R9\n"
                   "    unit_cost: 1\n    valid: {from: 2026-01-01}\n", encoding="utf-8")
    out = _run("--workspace", str(ws), "benefits", "validate", str(bad), ok=False)
    assert out.returncode == 2
    assert f"{bad} line 5, field items[0].risk: 'R9' is not a risk rating R1..R5" in out.stderr.replace("\n", "")
    refused = _run("--workspace", str(ws), "benefits", "add", str(bad), ok=False)
    assert refused.returncode == 2 and "nothing added" in refused.stderr and not (ws / "benefits" / "bad.yaml").exists()
    extra = ws.parent / "extra.yaml"
    extra.write_text("items:\n  - id: fund-trial\n    kind: product\n    name: {zh: 基金体验, en: Fund trial}\n"
                     "    risk: R4\n    unit_cost: 1\n    valid: {from: 2026-01-01}\n", encoding="utf-8")
    assert "catalogue now 13" in _run("--workspace", str(ws), "benefits", "add", str(extra)).stdout
    assert "fund-trial" in _run("--workspace", str(ws), "benefits", "list", "--kind", "product").stdout
    (ws / "benefits" / "extra.yaml").unlink()
    missing = _run("--workspace", str(ws), "benefits", "show", "nope", ok=False)
    assert missing.returncode == 2 and "no benefit 'nope'" in missing.stderr


def test_preview_named_customer_is_masked_with_sms_segments(ws: Path, playbook: Path) -> None:
    phones = _phones(ws)
    cid, phone = next((c, p) for c, p in sorted(phones.items()) if p and len(re.sub(r"\D", "", p)) == 11)
    out = _run("--workspace", str(ws), "playbook", "preview", str(playbook), "--customer", cid, "--as-of", AS_OF)
    text = out.stdout
    digits = re.sub(r"\D", "", phone)
    assert f"{digits[:3]}****{digits[-4:]}" in text
    assert digits not in re.sub(r"\s|│", "", text)
    assert "【盘活证券】" in text and "回T退订" in text.replace("\n", "").replace("│", "").replace(" ", "")
    assert re.search(r"\d+ characters, \d segment\(s\) \(max 3\)", text)
    assert "OPENTM-IPO-01" in text and cid in text
    unknown = _run("--workspace", str(ws), "playbook", "preview", str(playbook), "--customer", "NOPE", ok=False)
    assert unknown.returncode == 2 and "--customer 'NOPE'" in unknown.stderr


def test_preview_random_customer_repeatable_and_stored_version(ws: Path, playbook: Path) -> None:
    a = _run("--workspace", str(ws), "playbook", "preview", str(playbook), "--seed", "7").stdout
    b = _run("--workspace", str(ws), "playbook", "preview", str(playbook), "--seed", "7").stdout
    assert a == b
    _run("--workspace", str(ws), "users", "add", "root", "--role", "admin")
    _run("--workspace", str(ws), "users", "add", "ops", "--role", "operator", "--as", "root")
    _run("--workspace", str(ws), "playbook", "add", str(playbook), "--as", "ops")
    out = _run("--workspace", str(ws), "playbook", "preview", "ipo-day-wake-sleeping", "--seed", "7").stdout
    assert "ipo-day-wake-sleeping v1" in out


def test_forbidden_wording_refused_in_preview_add_and_approval(ws: Path) -> None:
    f = ws.parent / "bad-ipo.yaml"
    text = IPO.replace("id: ipo-day-wake-sleeping", "id: ipo-bad-wording")
    f.write_text(text + "content:\n  sms: {template: '新股申购零 风 险，{{ benefit_name }}'}\n", encoding="utf-8")
    out = _run("--workspace", str(ws), "playbook", "preview", str(f), "--seed", "1", ok=False)
    assert out.returncode == 2 and "'零风险'" in out.stderr and "content.sms.template" in out.stderr
    w = ("--workspace", str(ws))
    for user in (("root", "--role", "admin"), ("ops", "--role", "operator", "--as", "root"),
                 ("cmp", "--role", "compliance", "--as", "root")):
        _run(*w, "users", "add", *user, ok=False)  # already there when the preview test ran first
    assert "cmp" in _run(*w, "users", "list").stdout
    refused = _run(*w, "playbook", "add", str(f), "--as", "ops", ok=False)  # add runs the content review
    assert refused.returncode == 2 and "'零风险'" in refused.stderr and "nothing added" in refused.stderr
    assert "ipo-bad-wording" not in _run(*w, "playbook", "list").stdout
    # stored clean, then the brokerage tightens its list: approval reviews again with the settings in force
    f.write_text(text + "content:\n  sms: {template: '新股申购机会难得，{{ benefit_name }}'}\n", encoding="utf-8")
    _run(*w, "playbook", "add", str(f), "--as", "ops")
    _run(*w, "playbook", "submit", "ipo-bad-wording", "--as", "ops")
    settings_file = ws / "panhuo.yaml"
    before = settings_file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(before)
        data.setdefault("content", {})["forbidden_phrases"] = ["保本", "机会难得"]
        settings_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        refused = _run(*w, "playbook", "approve", "ipo-bad-wording", "--as", "cmp", ok=False)
    finally:
        settings_file.write_text(before, encoding="utf-8")
    assert refused.returncode == 2
    assert "cannot approve 'ipo-bad-wording' v1" in refused.stderr and "'机会难得'" in refused.stderr
    assert "in_review" in _run(*w, "playbook", "list").stdout
