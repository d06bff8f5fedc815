"""The run engine's message builder (panhuo.content.messages) on a generated brokerage and on hand-built tags:
the same text as the one-customer path (preview), personal data masked, defaults, rejections, set-based reads."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panhuo.config import ContentSettings, Workspace
from panhuo.content import ContentError, message_variables, render_content
from panhuo.content.messages import (
    GUARDRAIL,
    REASONS,
    MessageBuilder,
    _Var,
    default_content,
    effective_content,
    playbook_channels,
)
from panhuo.content.preview import customer_phone
from panhuo.playbooks.loader import validate_playbook
from tests.conftest import PANHUO

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 11, 24)
IPO = (REPO / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
BASE = IPO.split("\ncontent:")[0].rstrip("\n") + "\n"  # the starter without its content section
PERSONAL = BASE + """content:
  link: https://m.example.com/ipo
  sms:
    template: "尊敬的客户{{ phone }}，今日有新股申购，总资产{{ total_assets }}（{{ total_assets_fen }}分）。{{ benefit_name }}：{{ link }}"
  app_push:
    title: 今日新股申购
    body: "{{ brokerage_name }}：{{ benefit_name }}，{{ asset_band }}"
  wechat:
    template_id: OPENTM-IPO-01
    data: {first: 今日新股申购提醒, remark: "{{ benefit_name }}（{{ province }}）"}
"""


def _run(*args: str) -> None:
    out = subprocess.run([PANHUO, *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def gen_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A generated brokerage of 300 customers: ingested, status and tags computed at AS_OF."""
    root = tmp_path_factory.mktemp("messages")
    data, ws = root / "data", root / "ws"
    _run("generate", "--customers", "300", "--seed", "11", "--out", str(data), "--as-of", AS_OF.isoformat())
    for args in (("ingest", str(data)), ("status", "--as-of", AS_OF.isoformat()), ("tags", "--as-of", AS_OF.isoformat())):
        _run("--workspace", str(ws), *args)
    return Workspace.open(ws)


def _tag_rows(ws: Workspace) -> dict[str, dict]:
    path = max((ws.warehouse_dir / "tags").glob("*.parquet"))
    return {str(r["customer_id"]): r for r in pq.read_table(path).to_pylist()}


def test_contents_equal_the_one_customer_path_and_are_masked(gen_ws: Workspace) -> None:
    from panhuo.engines import connect

    spec = validate_playbook(PERSONAL, "ipo.yaml")
    b = MessageBuilder(gen_ws, spec, AS_OF, yaml_text=PERSONAL, file="ipo.yaml")
    assert set(b.columns) == {"total_assets_fen", "asset_band", "province"} and b.personal_fields == ["phone"]
    rows = _tag_rows(gen_ws)
    ids = sorted(rows)
    channels = [("app_push", "sms", "wechat")[i % 3] for i in range(len(ids))]
    benefits = [("ipo-guide-video", "level2-trial-7d")[i % 2] for i in range(len(ids))]
    out = b.build(ids, channels, benefits)
    assert len(out) == len(ids) and not out.rejected and all(p is None for p in out.problems)
    con = connect(gen_ws.settings.engine, gen_ws.tmp_dir)
    names = {"ipo-guide-video": "新股申购指南视频", "level2-trial-7d": "Level-2行情7天体验卡"}
    for cid, ch, bid, content in list(zip(ids, channels, benefits, out.contents, strict=True))[:60]:
        phone = customer_phone(gen_ws, con, cid)
        ref = render_content(spec.content, message_variables({**rows[cid], "as_of": AS_OF}, benefit_name=names[bid],
                                                             link="https://m.example.com/ipo", phone=phone))
        msg = next(m for m in ref if m.channel == ch)
        got = json.loads(content)
        if ch == "sms":
            assert got == {"text": msg.parts["template"]}
            digits = re.sub(r"\D", "", phone or "")
            if len(digits) == 11:
                assert f"{digits[:3]}****{digits[-4:]}" in got["text"] and digits not in got["text"]
            assert got["text"].startswith("【盘活证券】") and got["text"].endswith("回T退订")
            fen = rows[cid]["total_assets_fen"]
            assert f"（{fen}分）" in got["text"]
        elif ch == "app_push":
            assert got == {"title": msg.parts["title"], "body": msg.parts["body"]}
        else:
            assert got == {"template_id": "OPENTM-IPO-01",
                           "data": {"first": msg.parts["data.first"], "remark": msg.parts["data.remark"]}}
    assert not any(re.search(r"1\d{10}", c or "") for c in out.contents), "no unmasked phone in any content"


def test_one_query_for_all_candidates_and_one_render_per_distinct_values(gen_ws: Workspace) -> None:
    from panhuo.engines import connect

    con = connect(gen_ws.settings.engine, gen_ws.tmp_dir)
    calls = []
    real = con.to_pyarrow

    def counted(expr, *a, **kw):
        calls.append(expr)
        return real(expr, *a, **kw)

    con.to_pyarrow = counted  # the real backend, counted
    text = BASE + 'content:\n  app_push: {title: 新股申购, body: "{{ benefit_name }}：{{ asset_band }}"}\n'
    b = MessageBuilder(gen_ws, validate_playbook(text), AS_OF, yaml_text=text, con=con)
    ids = sorted(_tag_rows(gen_ws))
    b.prepare(ids)
    assert len(calls) == 1
    for lo in range(0, len(ids), 50):  # batches as the engine sends them: no more queries
        out = b.build(ids[lo:lo + 50], ["app_push"] * len(ids[lo:lo + 50]), ["ipo-guide-video"] * len(ids[lo:lo + 50]))
        assert all(c is not None for c in out.contents)
    assert len(calls) == 1
    bands = {r["asset_band"] for r in _tag_rows(gen_ws).values()}
    assert b.rendered == len(bands) < len(ids)


def test_playbook_without_content_gets_defaults_per_channel(gen_ws: Workspace) -> None:
    text = BASE.replace("allocation: thompson", "allocation: thompson").replace(
        "order: [app_push, wechat, sms]", "order: [app_push, wechat, sms, call]")
    spec = validate_playbook(text)
    assert playbook_channels(spec) == ["app_push", "sms", "wechat", "call"]
    assert effective_content(spec).channels() == ["app_push", "sms", "wechat", "call"]
    b = MessageBuilder(gen_ws, spec, AS_OF, yaml_text=text)
    assert b.columns == [] and b.personal_fields == []
    ids = sorted(_tag_rows(gen_ws))[:4]
    out = b.build(ids, ["app_push", "sms", "wechat", "call"], ["level2-trial-7d"] * 4)
    push, sms, wechat, call = (json.loads(c) for c in out.contents)
    assert push == {"title": "新股申购日唤醒沉睡客户", "body": "Level-2行情7天体验卡已为您准备好，打开App即可查看。"}
    assert sms["text"] == "【盘活证券】盘活证券：Level-2行情7天体验卡已为您准备好，详情请点击https://m.example.com/a回T退订"
    assert wechat == {"template_id": "PANHUO-DEFAULT", "data": {"first": "新股申购日唤醒沉睡客户",
                                                                "keyword1": "Level-2行情7天体验卡", "remark": "点击查看详情"}}
    assert "Level-2行情7天体验卡" in call["script"]
    assert b.rendered == 4  # the same customer-free default renders once per channel and benefit
    b.build(sorted(_tag_rows(gen_ws))[4:40], ["sms"] * 36, ["level2-trial-7d"] * 36)
    assert b.rendered == 4


def test_default_title_is_cut_to_the_push_limit_and_names_are_wording_checked(gen_ws: Workspace) -> None:
    long = BASE.replace("name: 新股申购日唤醒沉睡客户", "name: 新股申购日唤醒沉睡客户并提醒查看申购规则与中签知识")
    assert default_content(validate_playbook(long)).app_push.title == "新股申购日唤醒沉睡客户并提醒查看申购规则"
    bad = BASE.replace("name: 新股申购日唤醒沉睡客户", "name: 新股申购稳赚")
    with pytest.raises(ContentError, match="稳赚"):
        MessageBuilder(gen_ws, validate_playbook(bad), AS_OF, yaml_text=bad)


def _tags_file(tmp: Path, rows: list[dict]) -> Path:
    schema = pa.schema([("customer_id", pa.string()), ("province", pa.string()), ("total_assets_fen", pa.int64()),
                        ("status", pa.string())])
    path = tmp / f"{AS_OF.isoformat()}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_too_long_or_forbidden_rendered_messages_are_rejected_with_a_reason(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    ws = ws.save(ws.settings.model_copy(update={"content": ContentSettings(push_body_max=20, sms_max_segments=1)}))
    rows = [{"customer_id": "c1", "province": "广东", "total_assets_fen": 1},
            {"customer_id": "c2", "province": "本地", "total_assets_fen": 123_456_789_00},
            {"customer_id": "c3", "province": "内蒙古自治区", "total_assets_fen": None}]
    tags = _tags_file(tmp_path, [{**r, "status": "sleeping"} for r in rows])
    text = BASE + """content:
  app_push: {title: 新股申购, body: "{{ province }}客户，您的总资产{{ total_assets }}"}
  sms: {template: "保{{ province }}客户，{{ link }} {{ link }} {{ link }}"}
"""
    b = MessageBuilder(ws, validate_playbook(text, "ipo.yaml"), AS_OF, yaml_text=text, file="ipo.yaml", tags_file=tags)
    out = b.build(["c1", "c2", "c3", "c1", "c2", "zz"], ["app_push"] * 3 + ["sms"] * 2 + ["email"],
                  ["level2-trial-7d"] * 6)
    assert out.contents[0] == '{"title":"新股申购","body":"广东客户，您的总资产0.01元"}'
    assert out.contents[1] is None and out.problems[1].reason == "content_too_long"
    assert "push body is 25 characters, more than 20" in out.problems[1].detail
    assert "ipo.yaml" in out.problems[1].detail and "content.app_push.body" in out.problems[1].detail
    assert out.contents[2] == '{"title":"新股申购","body":"内蒙古自治区客户，您的总资产"}'
    assert out.problems[3].reason == "content_too_long" and "segments" in out.problems[3].detail
    assert out.problems[4].reason == "content_forbidden_wording" and "'保本'" in out.problems[4].detail
    assert out.problems[5].reason == "content_render_failed" and "'email'" in out.problems[5].detail
    assert out.rejected == {"content_too_long": 2, "content_forbidden_wording": 1, "content_render_failed": 1}
    assert set(out.rejected) <= set(REASONS) and all(len(r) <= 60 for r in REASONS) and GUARDRAIL == "content"


def test_a_value_a_template_cannot_take_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    tags = _tags_file(tmp_path, [{"customer_id": "c1", "province": "广东", "total_assets_fen": None, "status": "x"}])
    text = BASE + 'content:\n  app_push: {title: 新股申购, body: "{{ total_assets_fen + 1 }}"}\n'
    b = MessageBuilder(ws, validate_playbook(text), AS_OF, yaml_text=text, tags_file=tags)
    out = b.build(["c1"], ["app_push"], ["level2-trial-7d"])
    assert out.contents == [None] and out.problems[0].reason == "content_render_failed"
    with pytest.raises(ValueError, match="differ in length"):
        b.build(["c1"], [], [])


@settings(max_examples=200, deadline=None)
@given(fen=st.one_of(st.none(), st.integers(-10**15, 10**15)),
       day=st.one_of(st.none(), st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1))),
       text=st.one_of(st.none(), st.text(max_size=8)))
def test_a_variable_is_shown_exactly_as_message_variables_shows_it(fen, day, text) -> None:
    ref = message_variables({"total_assets_fen": fen, "last_trade_date": day, "province": text})
    assert _Var("total_assets", "total_assets_fen", "money").value(fen) == ref["total_assets"]
    assert _Var("total_assets_fen", "total_assets_fen", "money_fen").value(fen) == ref["total_assets_fen"]
    assert _Var("last_trade_date", "last_trade_date", "date").value(day) == ref["last_trade_date"]
    assert _Var("province", "province", "plain").value(text) == ref["province"]


@pytest.fixture(scope="module")
def one_segment_builder(tmp_path_factory: pytest.TempPathFactory) -> MessageBuilder:
    ws = Workspace.open(tmp_path_factory.mktemp("one_segment") / "ws")
    ws = ws.save(ws.settings.model_copy(update={"content": ContentSettings(sms_max_segments=1)}))
    text = BASE + 'content:\n  sms: {template: "{{ benefit_name }}今日开放申购，详情{{ link }}"}\n'
    return MessageBuilder(ws, validate_playbook(text), AS_OF, yaml_text=text)


@settings(max_examples=80, deadline=None)
@given(name=st.text(alphabet="申购指南视频新股体验卡行情abc123", min_size=1, max_size=60))
def test_an_sms_is_sent_exactly_when_it_fits_the_segments(one_segment_builder: MessageBuilder, name: str) -> None:
    """Property: whatever the benefit name (an id missing from the catalogue is shown as is), an SMS is sent
    iff signature + text + 回T退订 fits in one segment (70 characters), and then it is exactly that text."""
    out = one_segment_builder.build(["c1"], ["sms"], [name])
    final = f"【盘活证券】{name}今日开放申购，详情https://m.example.com/a回T退订"
    if len(final) <= 70:
        assert out.contents == [json.dumps({"text": final}, ensure_ascii=False, separators=(",", ":"))]
    else:
        assert out.contents == [None] and out.problems[0].reason == "content_too_long"
        assert f"{len(final)} characters = 2 segments" in out.problems[0].detail
