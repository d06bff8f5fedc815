"""Playbooks over the API: list, read, add a version (validated and reviewed as ``panhuo playbook add``
does), and the lifecycle transitions (submit, approve, reject, ...) through
:mod:`panhuo.playbooks.repository`, the same functions the CLI calls (roles, four eyes and audit there)."""

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from panhuo.errors import LifecycleError
from panhuo.playbooks import repository as repo
from panhuo.service import auth
from panhuo.service.deps import API, Db, NotFound, Reader, Writer, workspace_of
from panhuo.service.schemas import (
    ApproveIn,
    PlaybookDetailOut,
    PlaybookIn,
    PlaybookOut,
    RejectIn,
    VersionOut,
    errors,
)
from panhuo.store.users import require_role

__all__ = ["get_playbook_or_404", "playbook_out", "router", "transition"]

router = APIRouter(prefix=API, tags=["playbooks"])


def playbook_out(pb: Any) -> dict[str, Any]:
    return {k: getattr(pb, k) for k in PlaybookOut.model_fields}


def get_playbook_or_404(s: Session, playbook_id: str) -> Any:
    try:
        return repo.get_playbook(s, playbook_id)
    except LifecycleError as exc:
        raise NotFound(str(exc)) from None


def _detail(s: Session, playbook_id: str) -> dict[str, Any]:
    pb = get_playbook_or_404(s, playbook_id)
    versions = [{k: getattr(v, k) for k in VersionOut.model_fields} for v in pb.versions]
    return {**playbook_out(pb), "versions": versions}


@router.get("/playbooks", response_model=list[PlaybookOut], responses=errors())
def list_playbooks(_who: Reader, s: Db, state: str | None = None) -> list[dict[str, Any]]:
    """Every playbook with its state and versions in review and live (optionally only one state)."""
    return [playbook_out(pb) for pb in repo.list_playbooks(s, state=state)]


@router.get("/playbooks/{playbook_id}", response_model=PlaybookDetailOut, responses=errors(404))
def get_playbook(playbook_id: str, _who: Reader, s: Db) -> dict[str, Any]:
    """One playbook with every version (author, time, hash and YAML text)."""
    return _detail(s, playbook_id)


def checked(text: str, source: str, request: Request) -> Any:
    """Validate and review the text exactly as ``panhuo playbook add`` does; PlaybookError lists every issue."""
    from panhuo.playbooks.loader import LoadedPlaybook, checked_in_workspace, validate_playbook

    return checked_in_workspace(LoadedPlaybook(spec=validate_playbook(text, source), text=text, source=source),
                                workspace_of(request))


@router.post("/playbooks", response_model=PlaybookDetailOut, status_code=201, responses=errors(409, invalid=True))
def add_playbook(body: PlaybookIn, request: Request, who: Writer, s: Db) -> dict[str, Any]:
    """Add a playbook (version 1, draft) or the next version of the one with the same id (operator or admin).
    The YAML is validated and reviewed first; on any issue nothing is stored (422, each with file, line, field)."""
    from panhuo.playbooks.lifecycle import ACTION_ROLES

    require_role(who.user, *ACTION_ROLES["edit"], action="edit (playbook)")  # 403 before 422
    version = repo.add_version(s, checked(body.yaml, body.source or "api", request), actor=who.user.name)
    return _detail(s, version.playbook_id)


def transition(playbook_id: str, action: str, who: auth.Authenticated, s: Session, **kw: Any) -> dict[str, Any]:
    """Apply a lifecycle ``action`` as ``who``: 403 (role) before 404 (unknown) before 409 (state)."""
    from panhuo.playbooks.lifecycle import ACTION_ROLES

    require_role(who.user, *ACTION_ROLES[action], action=f"{action} (playbook)")
    get_playbook_or_404(s, playbook_id)
    return playbook_out(repo.transition(s, playbook_id, action, actor=who.user.name, **kw))


@router.post("/playbooks/{playbook_id}/submit", response_model=PlaybookOut, responses=errors(404, 409))
def submit(playbook_id: str, who: Writer, s: Db) -> dict[str, Any]:
    """Send the latest version for compliance review (draft -> in_review; operator or admin)."""
    return transition(playbook_id, "submit", who, s)


@router.post("/playbooks/{playbook_id}/approve", response_model=PlaybookOut, responses=errors(404, 409))
def approve(playbook_id: str, request: Request, who: Writer, s: Db, body: ApproveIn | None = None) -> dict[str, Any]:
    """Approve the version in review (compliance; never its own author: four eyes)."""
    ws = workspace_of(request)
    return transition(playbook_id, "approve", who, s, reason=body.note if body else None,
                      content_settings=ws.settings.content, templates_dir=ws.root / "templates")


@router.post("/playbooks/{playbook_id}/reject", response_model=PlaybookOut, responses=errors(404, 409))
def reject(playbook_id: str, body: RejectIn, who: Writer, s: Db) -> dict[str, Any]:
    """Reject the version in review back to draft, with a reason (compliance)."""
    return transition(playbook_id, "reject", who, s, reason=body.reason)
