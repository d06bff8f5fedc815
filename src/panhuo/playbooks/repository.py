"""Playbooks in the operational store: versions, lifecycle transitions, four-eyes approval, audit.

Every function works inside the caller's session (one transaction): the change and its audit entry
commit together or not at all. The playbook row is locked (``FOR UPDATE`` on PostgreSQL; SQLite
transactions are ``BEGIN IMMEDIATE``) so concurrent transitions serialise.
"""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from panhuo.playbooks.errors import LifecycleError
from panhuo.playbooks.lifecycle import ACTION_ROLES, check_editable, next_state
from panhuo.playbooks.loader import LoadedPlaybook
from panhuo.store.audit import record
from panhuo.store.errors import AccessDenied
from panhuo.store.models import Playbook, PlaybookVersion, User, now_shanghai
from panhuo.store.users import acting_user, require_role

__all__ = [
    "activate",
    "add_version",
    "approve",
    "diff_versions",
    "get_playbook",
    "get_version",
    "list_playbooks",
    "pause",
    "reject",
    "retire",
    "snapshot",
    "submit",
    "transition",
]


def snapshot(pb: Playbook) -> dict[str, Any]:
    """The audited view of a playbook row."""
    return {
        "state": pb.state,
        "name": pb.name,
        "current_version": pb.current_version,
        "review_version": pb.review_version,
        "live_version": pb.live_version,
    }


def get_playbook(session: Session, playbook_id: str, *, lock: bool = False) -> Playbook:
    """The playbook ``playbook_id``; LifecycleError when there is none."""
    q = select(Playbook).where(Playbook.id == playbook_id)
    if lock:
        q = q.with_for_update()
    pb = session.execute(q).scalar_one_or_none()
    if pb is None:
        raise LifecycleError(f"no playbook {playbook_id!r} (see 'panhuo playbook list')")
    return pb


def get_version(session: Session, playbook_id: str, version: int | None = None) -> PlaybookVersion:
    """A version of a playbook (default: its current version); LifecycleError when missing."""
    pb = get_playbook(session, playbook_id)
    number = pb.current_version if version is None else version
    v = session.get(PlaybookVersion, (playbook_id, number))
    if v is None:
        raise LifecycleError(f"playbook {playbook_id!r} has no version {number} (1..{pb.current_version})")
    return v


def list_playbooks(session: Session, *, state: str | None = None) -> list[Playbook]:
    q = select(Playbook).order_by(Playbook.id)
    if state is not None:
        q = q.where(Playbook.state == state)
    return list(session.execute(q).scalars())


def _actor(session: Session, name: str | None, action: str) -> User:
    user = acting_user(session, name)
    require_role(user, *ACTION_ROLES[action], action=f"{action} (playbook)")
    return user


def add_version(session: Session, loaded: LoadedPlaybook, *, actor: str | None) -> PlaybookVersion:
    """Store ``loaded`` as a new playbook (version 1) or the next version of an existing one.

    An edit sends the playbook back to draft (a new version needs a new review); a live playbook
    must be paused first, a retired one cannot change, and unchanged text is refused.
    """
    user = _actor(session, actor, "edit")
    spec, now = loaded.spec, now_shanghai()
    pb = session.execute(select(Playbook).where(Playbook.id == spec.id).with_for_update()).scalar_one_or_none()
    if pb is None:
        pb = Playbook(id=spec.id, name=spec.name, state="draft", current_version=0, created_by=user.name,
                      created_at=now, updated_at=now)
        session.add(pb)
        before: dict[str, Any] | None = None
    else:
        check_editable(pb.state)
        current = session.get(PlaybookVersion, (pb.id, pb.current_version))
        if current is not None and current.content_hash == loaded.content_hash:
            raise LifecycleError(f"playbook {pb.id!r} version {pb.current_version} already has this exact text")
        before = snapshot(pb)
    number = pb.current_version + 1
    version = PlaybookVersion(playbook_id=spec.id, version=number, yaml_text=loaded.text, parsed=loaded.parsed(),
                              content_hash=loaded.content_hash, source=loaded.source[:500], author=user.name,
                              created_at=now)
    session.add(version)
    pb.current_version, pb.name, pb.state, pb.review_version, pb.updated_at = number, spec.name, "draft", None, now
    session.flush()
    after = {**snapshot(pb), "version": number, "content_hash": loaded.content_hash, "source": loaded.source}
    record(session, actor=user.name, action="playbook.create" if before is None else "playbook.edit",
           entity="playbook", entity_id=pb.id, before=before, after=after)
    return version


def transition(
    session: Session, playbook_id: str, action: str, *, actor: str | None, reason: str | None = None,
    content_settings: Any = None, templates_dir: Any = None,
) -> Playbook:
    """Apply lifecycle ``action`` as ``actor``; checks roles, four eyes and the state machine, then audits.

    Approval also runs the content review (:func:`panhuo.content.check_parsed_content`: wording that
    promises returns or no loss, unknown variables, sandbox rules, SMS signature and 回T退订) on the
    version under review, with ``content_settings`` (``content`` of panhuo.yaml; default settings when
    None), and refuses with every issue listed.
    """
    user = _actor(session, actor, action)
    pb = get_playbook(session, playbook_id, lock=True)
    target = next_state(pb.state, action)
    before = snapshot(pb)
    extra: dict[str, Any] = {}
    if action == "submit":
        pb.review_version = pb.current_version
    elif action == "approve":
        version = get_version(session, pb.id, pb.review_version)
        if version.author == user.name:
            raise AccessDenied(
                f"four eyes: {user.name!r} wrote version {version.version} of {pb.id!r} and cannot approve it; "
                f"another user with the compliance role must"
            )
        _review_content(version, content_settings, templates_dir)
        extra = {"approved_version": version.version, "author": version.author, "content_hash": version.content_hash}
    elif action == "reject":
        if not reason or not reason.strip():
            raise LifecycleError("a rejection needs a reason (--reason)")
        extra = {"rejected_version": pb.review_version}
        pb.review_version = None
    elif action == "activate":
        if pb.state == "approved":
            pb.live_version = pb.review_version
        extra = {"live_version": pb.live_version}
    pb.state, pb.updated_at = target, now_shanghai()
    session.flush()
    after = {**snapshot(pb), **extra}
    if reason:
        after["reason"] = reason.strip()
    record(session, actor=user.name, action=f"playbook.{action}", entity="playbook", entity_id=pb.id,
           before=before, after=after)
    return pb


def _review_content(version: PlaybookVersion, settings: Any, templates_dir: Any) -> None:
    from panhuo.content.review import check_parsed_content

    issues = check_parsed_content(version.parsed or {}, version.yaml_text, f"{version.playbook_id} v{version.version}",
                                  settings, templates_dir=templates_dir)
    if issues:
        listed = "\n".join(f"  - {i}" for i in issues)
        raise LifecycleError(f"cannot approve {version.playbook_id!r} v{version.version}: its content fails the "
                             f"review ({len(issues)} issue(s)); reject it with a reason\n{listed}")


def submit(session: Session, playbook_id: str, *, actor: str | None) -> Playbook:
    return transition(session, playbook_id, "submit", actor=actor)


def approve(
    session: Session, playbook_id: str, *, actor: str | None, note: str | None = None,
    content_settings: Any = None, templates_dir: Any = None,
) -> Playbook:
    return transition(session, playbook_id, "approve", actor=actor, reason=note,
                      content_settings=content_settings, templates_dir=templates_dir)


def reject(session: Session, playbook_id: str, *, actor: str | None, reason: str) -> Playbook:
    return transition(session, playbook_id, "reject", actor=actor, reason=reason)


def activate(session: Session, playbook_id: str, *, actor: str | None) -> Playbook:
    return transition(session, playbook_id, "activate", actor=actor)


def pause(session: Session, playbook_id: str, *, actor: str | None, reason: str | None = None) -> Playbook:
    return transition(session, playbook_id, "pause", actor=actor, reason=reason)


def retire(session: Session, playbook_id: str, *, actor: str | None, reason: str | None = None) -> Playbook:
    return transition(session, playbook_id, "retire", actor=actor, reason=reason)


def diff_versions(session: Session, playbook_id: str, a: int, b: int) -> str:
    """A unified diff of the YAML of versions ``a`` and ``b``."""
    va, vb = get_version(session, playbook_id, a), get_version(session, playbook_id, b)
    return "".join(
        difflib.unified_diff(
            va.yaml_text.splitlines(keepends=True),
            vb.yaml_text.splitlines(keepends=True),
            fromfile=f"{playbook_id} v{a} ({va.author})",
            tofile=f"{playbook_id} v{b} ({vb.author})",
        )
    )
