"""Lifecycle: only legal transitions, four-eyes approval, roles, edits, every change audited."""

from __future__ import annotations

import itertools

import pytest

from panhuo.playbooks import LifecycleError, legal_transitions, next_state
from panhuo.playbooks import repository as repo
from panhuo.playbooks.lifecycle import STATES, TRANSITIONS
from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook
from panhuo.store import Store
from panhuo.store.audit import count_audit, iter_audit, verify_audit
from panhuo.store.errors import AccessDenied
from tests.playbooks.test_playbook_schema import GOOD

__all__: list[str] = []

PID = "ipo-day-wake-sleeping"
PATH_TO = {  # actions (and actors) that bring a fresh playbook to each state
    "draft": [],
    "in_review": [("submit", "ops")],
    "approved": [("submit", "ops"), ("approve", "cmp")],
    "live": [("submit", "ops"), ("approve", "cmp"), ("activate", "ops")],
    "paused": [("submit", "ops"), ("approve", "cmp"), ("activate", "ops"), ("pause", "ops")],
    "retired": [("retire", "ops")],
}
ACTOR = {"submit": "ops", "approve": "cmp", "reject": "cmp", "activate": "ops", "pause": "ops", "retire": "ops"}


def _loaded(text: str = GOOD) -> LoadedPlaybook:
    return LoadedPlaybook(validate_playbook(text, "ipo.yaml"), text, "ipo.yaml")


def _add(store: Store, actor: str = "ops", text: str = GOOD) -> None:
    with store.session() as s:
        repo.add_version(s, _loaded(text), actor=actor)


def _do(store: Store, action: str, actor: str, reason: str | None = "because") -> str:
    with store.session() as s:
        return repo.transition(s, PID, action, actor=actor, reason=reason).state


@pytest.mark.parametrize(("state", "action"), list(itertools.product(STATES, TRANSITIONS)))
def test_state_machine_allows_only_legal_transitions(state: str, action: str) -> None:
    sources, target = TRANSITIONS[action]
    if state in sources:
        assert next_state(state, action) == target
    else:
        with pytest.raises(LifecycleError, match=f"cannot {action} a playbook that is {state}"):
            next_state(state, action)


def test_legal_transitions_are_the_documented_ones() -> None:
    assert legal_transitions() == {
        ("draft", "submit", "in_review"), ("in_review", "approve", "approved"), ("in_review", "reject", "draft"),
        ("approved", "activate", "live"), ("paused", "activate", "live"), ("live", "pause", "paused"),
        ("draft", "retire", "retired"), ("approved", "retire", "retired"), ("live", "retire", "retired"),
        ("paused", "retire", "retired"),
    }


@pytest.mark.parametrize("state", STATES)
def test_store_refuses_every_illegal_transition_and_writes_nothing(people: Store, state: str) -> None:
    _add(people)
    for action, actor in PATH_TO[state]:
        _do(people, action, actor)
    with people.session() as s:
        assert repo.get_playbook(s, PID).state == state
        before = count_audit(s)
    for action in TRANSITIONS:
        if state in TRANSITIONS[action][0]:
            continue
        with pytest.raises(LifecycleError), people.session() as s:
            repo.transition(s, PID, action, actor=ACTOR[action], reason="x")
    with people.session() as s:
        assert repo.get_playbook(s, PID).state == state
        assert count_audit(s) == before


def test_author_cannot_approve_own_version(people: Store) -> None:
    _add(people, actor="cmp_ops")
    _do(people, "submit", "cmp_ops")
    with pytest.raises(AccessDenied, match="four eyes: 'cmp_ops' wrote version 1"):
        _do(people, "approve", "cmp_ops")
    assert _do(people, "approve", "cmp") == "approved"


def test_four_eyes_is_per_version(people: Store) -> None:
    _add(people, actor="cmp_ops")
    _add(people, actor="ops", text=GOOD.replace("holdout: 0.10", "holdout: 0.2"))
    _do(people, "submit", "ops")
    assert _do(people, "approve", "cmp_ops") == "approved"  # cmp_ops wrote v1, not v2 under review


@pytest.mark.parametrize("who", ["ops", "root", "view"])
def test_only_compliance_can_approve_or_reject(people: Store, who: str) -> None:
    _add(people)
    _do(people, "submit", "ops")
    for action in ("approve", "reject"):
        with pytest.raises(AccessDenied, match="needs the compliance role"):
            _do(people, action, who)


@pytest.mark.parametrize(("who", "match"), [(None, "no acting user"), ("nobody", "unknown user"), ("gone", "disabled")])
def test_acting_user_is_required_known_and_active(people: Store, who: str | None, match: str) -> None:
    with pytest.raises(AccessDenied, match=match), people.session() as s:
        repo.add_version(s, _loaded(), actor=who)


def test_reject_needs_a_reason_and_returns_to_draft(people: Store) -> None:
    _add(people)
    _do(people, "submit", "ops")
    with pytest.raises(LifecycleError, match="needs a reason"):
        _do(people, "reject", "cmp", reason="  ")
    assert _do(people, "reject", "cmp", reason="文案需修改") == "draft"
    with people.session() as s:
        last = next(iter_audit(s, entity="playbook", entity_id=PID))
        assert last.action == "playbook.reject" and last.after is not None
        assert last.after["reason"] == "文案需修改" and last.before is not None and last.before["state"] == "in_review"


def test_edits_make_immutable_versions_and_return_to_draft(people: Store) -> None:
    _add(people)
    with pytest.raises(LifecycleError, match="already has this exact text"):
        _add(people)
    for action, actor in PATH_TO["live"]:
        _do(people, action, actor)
    v2 = GOOD.replace("holdout: 0.10", "holdout: 0.2")
    with pytest.raises(LifecycleError, match="pause it first"):
        _add(people, text=v2)
    _do(people, "pause", "cmp")
    _add(people, actor="ops2", text=v2)
    with people.session() as s:
        pb = repo.get_playbook(s, PID)
        assert (pb.state, pb.current_version, pb.live_version) == ("draft", 2, 1)
        assert [v.author for v in pb.versions] == ["ops", "ops2"]
        assert repo.get_version(s, PID, 1).parsed["method"]["holdout"] == 0.1
        assert "-method:    {mode: automated, holdout: 0.10" in repo.diff_versions(s, PID, 1, 2)
    _do(people, "submit", "ops2")
    _do(people, "approve", "cmp")
    _do(people, "activate", "ops")
    _do(people, "retire", "ops")
    with pytest.raises(LifecycleError, match="retired"):
        _add(people, text=GOOD.replace("holdout: 0.10", "holdout: 0.3"))
    with people.session() as s:
        pb = repo.get_playbook(s, PID)
        assert (pb.state, pb.live_version) == ("retired", 2)
        actions = [e.action for e in iter_audit(s, entity="playbook")][::-1]
        assert actions == ["playbook.create", "playbook.submit", "playbook.approve", "playbook.activate",
                           "playbook.pause", "playbook.edit", "playbook.submit", "playbook.approve",
                           "playbook.activate", "playbook.retire"]
        assert verify_audit(s).ok


def test_unknown_playbook(people: Store) -> None:
    with pytest.raises(LifecycleError, match="no playbook 'nope'"), people.session() as s:
        repo.transition(s, "nope", "submit", actor="ops")
