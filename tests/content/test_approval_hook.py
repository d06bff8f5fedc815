"""Approval runs the content review: a version whose templates fail it cannot be approved."""

from __future__ import annotations

from pathlib import Path

import pytest

from panhuo.config import ContentSettings
from panhuo.errors import LifecycleError
from panhuo.playbooks import repository as repo
from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook
from panhuo.store import add_user, open_store

__all__: list[str] = []

_STARTER = (Path(__file__).resolve().parents[2] / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
IPO = _STARTER.split("\ncontent:")[0].rstrip("\n") + "\n"  # the starter without its own content section


def _loaded(extra: str) -> LoadedPlaybook:
    text = IPO + extra
    return LoadedPlaybook(spec=validate_playbook(text, "ipo.yaml"), text=text, source="ipo.yaml")


@pytest.fixture
def store(tmp_path: Path):
    st = open_store(f"sqlite:///{tmp_path}/panhuo.db")
    with st.session() as s:
        add_user(s, "root", ["admin"])
        add_user(s, "ops", ["operator"], actor="root")
        add_user(s, "cmp", ["compliance"], actor="root")
    yield st
    st.dispose()


def test_forbidden_wording_blocks_approval_and_changes_nothing(store) -> None:
    with store.session() as s:
        repo.add_version(s, _loaded("content:\n  sms: {template: '稳赚不赔，{{ benefit_name }}'}\n"), actor="ops")
        repo.submit(s, "ipo-day-wake-sleeping", actor="ops")
    with pytest.raises(LifecycleError) as info, store.session() as s:
        repo.approve(s, "ipo-day-wake-sleeping", actor="cmp")
    message = str(info.value)
    assert "cannot approve 'ipo-day-wake-sleeping' v1" in message
    assert "'稳赚'" in message and "'稳赚不赔'" in message and "content.sms.template" in message
    with store.session() as s:
        assert repo.get_playbook(s, "ipo-day-wake-sleeping").state == "in_review"
        repo.reject(s, "ipo-day-wake-sleeping", actor="cmp", reason="wording")


def test_clean_content_approves_and_settings_phrases_apply(store) -> None:
    with store.session() as s:
        repo.add_version(s, _loaded("content:\n  sms: {template: '限量新股指南，{{ benefit_name }}'}\n"), actor="ops")
        repo.submit(s, "ipo-day-wake-sleeping", actor="ops")
    with pytest.raises(LifecycleError, match="限量"), store.session() as s:
        repo.approve(s, "ipo-day-wake-sleeping", actor="cmp", content_settings=ContentSettings(forbidden_phrases=["限量"]))
    with store.session() as s:
        assert repo.approve(s, "ipo-day-wake-sleeping", actor="cmp").state == "approved"


def test_unknown_variable_blocks_approval(store) -> None:
    with store.session() as s:
        repo.add_version(s, _loaded("content:\n  app_push: {title: 提醒, body: '{{ nickname }}'}\n"), actor="ops")
        repo.submit(s, "ipo-day-wake-sleeping", actor="ops")
    with pytest.raises(LifecycleError, match="unknown variable 'nickname'"), store.session() as s:
        repo.approve(s, "ipo-day-wake-sleeping", actor="cmp")
