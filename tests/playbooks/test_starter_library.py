"""Every starter playbook in ``playbooks/`` validates, names its tier, segment and success event, passes the
benefit and content review, and renders its messages for real customers of a generated brokerage."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from panhuo.config import Workspace
from panhuo.content.messages import MessageBuilder, playbook_channels
from panhuo.playbooks import load_playbook, targets_dormant
from panhuo.playbooks.loader import review_playbook
from tests.conftest import PANHUO

__all__: list[str] = []

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"
FILES = sorted(LIBRARY.glob("*.yaml"))


def test_library_has_the_nine_starters() -> None:
    assert {f.stem for f in FILES} >= {
        "new-empty-day-1-3-7", "ipo-day-wake-sleeping", "index-move-news-sleeping-alive",
        "edu-series-silent-low-asset", "dormant-activation-invite", "rescue-effective-to-sleeping",
        "advisor-call-high-value-sleeping", "new-fund-launch-product-holders", "account-anniversary",
    }


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_starter_playbook_validates(path: Path) -> None:
    pb = load_playbook(path)
    spec = pb.spec
    assert spec.id == path.stem, "file name is the playbook id"
    assert spec.user.tier and spec.user.segment and spec.method.success.event
    assert any("\u4e00" <= ch <= "\u9fff" for ch in spec.name), "zh-CN name"
    if targets_dormant(spec):
        assert spec.purpose == "activation_invite" and spec.method.success.event == "activated"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_starter_passes_benefit_and_content_review(path: Path) -> None:
    """Known, unexpired benefits, product risk, and every template through the content review."""
    pb = load_playbook(path)
    assert pb.spec.content is not None, "every starter has zh-CN content"
    assert set(pb.spec.content.channels()) == set(playbook_channels(pb.spec)), "a template per channel used"
    assert review_playbook(pb, as_of=dt.date(2026, 11, 24)) == []


@pytest.fixture(scope="module")
def brokerage(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A generated brokerage (200 customers) with tags at 2026-11-24."""
    root = tmp_path_factory.mktemp("starters")
    data, ws = root / "data", root / "ws"
    steps = [("generate", "--customers", "200", "--seed", "2", "--out", str(data), "--as-of", "2026-11-24"),
             ("--workspace", str(ws), "ingest", str(data)), ("--workspace", str(ws), "status", "--as-of", "2026-11-24"),
             ("--workspace", str(ws), "tags", "--as-of", "2026-11-24")]
    for args in steps:
        out = subprocess.run([PANHUO, *args], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
    return Workspace.open(ws)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_starter_renders_for_real_customers(path: Path, brokerage: Workspace) -> None:
    """Every channel and every benefit of the starter, for real customers: sent, within the length rules."""
    pb = load_playbook(path)
    b = MessageBuilder(brokerage, pb.spec, dt.date(2026, 11, 24), yaml_text=pb.text, file=str(path))
    snapshot = max((brokerage.warehouse_dir / "tags").glob("*.parquet"))
    ids = pq.read_table(snapshot, columns=["customer_id"]).column(0).to_pylist()[:40]
    items = list(dict.fromkeys([*pb.spec.benefit.items, *(i for a in pb.spec.method.arms or [] for i in a.items or [])]))
    combos = [(c, ch, bid) for c in ids for ch in playbook_channels(pb.spec) for bid in items]
    out = b.build([c[0] for c in combos], [c[1] for c in combos], [c[2] for c in combos])
    assert out.problems == [None] * len(combos), out.rejected
    settings = brokerage.settings.content
    for (_, channel, bid), content in zip(combos, out.contents, strict=True):
        msg = json.loads(content)
        assert b.benefit_name(bid) in content
        assert not re.search(r"\{\{|\{%|None", content), "no template syntax or missing values left"
        if channel == "sms":
            assert msg["text"].startswith("【盘活证券】") and msg["text"].endswith("回T退订")
            assert len(msg["text"]) <= settings.sms_max_segments * settings.sms_multi_segment
        elif channel == "app_push":
            assert len(msg["title"]) <= settings.push_title_max and len(msg["body"]) <= settings.push_body_max
        elif channel == "wechat":
            assert msg["template_id"] and all(msg["data"].values())
        else:
            assert "客户经理" in msg["script"]
