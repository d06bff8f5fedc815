"""Every starter playbook in ``playbooks/`` validates and names its tier, segment and success event."""

from __future__ import annotations

from pathlib import Path

import pytest

from panhuo.playbooks import load_playbook, targets_dormant

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
