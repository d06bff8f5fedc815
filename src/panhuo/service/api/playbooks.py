"""Playbooks over the API: list, read, versions and the diff of two, add a version (validated and reviewed as
``panhuo playbook add`` does), the lifecycle transitions (submit, approve, reject, activate = go live, pause,
retire) through :mod:`panhuo.playbooks.repository` (the functions the CLI calls: roles, four eyes and the audit
log are there), a preview rendered for a named customer (``panhuo playbook preview``, masked) and a dry run's
funnel (``panhuo playbook dry-run``, :func:`panhuo.runs.engine.dry_run`: nothing written)."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from panhuo.errors import LifecycleError
from panhuo.playbooks import repository as repo
from panhuo.service import auth
from panhuo.service.deps import API, MAX_ID, Db, NotFound, ReadDb, Reader, RowId, Writer, requires, workspace_of
from panhuo.service.schemas import (
    ApproveIn,
    DiffOut,
    DryRunOut,
    PlaybookDetailOut,
    PlaybookIn,
    PlaybookOut,
    PreviewOut,
    ReasonIn,
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
def list_playbooks(_who: Reader, s: ReadDb, state: str | None = None) -> list[dict[str, Any]]:
    """Every playbook with its state and versions in review and live (optionally only one state)."""
    return [playbook_out(pb) for pb in repo.list_playbooks(s, state=state)]


@router.get("/playbooks/{playbook_id}", response_model=PlaybookDetailOut, responses=errors(404))
def get_playbook(playbook_id: str, _who: Reader, s: ReadDb) -> dict[str, Any]:
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


@router.get("/playbooks/{playbook_id}/versions/{version}", response_model=VersionOut, responses=errors(404))
def get_version(playbook_id: str, version: RowId, _who: Reader, s: ReadDb) -> dict[str, Any]:
    """One version: author, time, content hash, source and YAML text."""
    get_playbook_or_404(s, playbook_id)
    try:
        v = repo.get_version(s, playbook_id, version)
    except LifecycleError as exc:
        raise NotFound(str(exc)) from None
    return {k: getattr(v, k) for k in VersionOut.model_fields}


@router.get("/playbooks/{playbook_id}/diff", response_model=DiffOut, responses=errors(404))
def diff(playbook_id: str, _who: Reader, s: ReadDb,
         from_version: int = Query(ge=1, le=MAX_ID, description="the older version"),
         to_version: int = Query(ge=1, le=MAX_ID, description="the newer version")) -> dict[str, Any]:
    """The unified diff between two versions' YAML (what compliance reviews in the approval queue)."""
    get_playbook_or_404(s, playbook_id)
    try:
        text = repo.diff_versions(s, playbook_id, from_version, to_version)
    except LifecycleError as exc:
        raise NotFound(str(exc)) from None
    return {"playbook_id": playbook_id, "from_version": from_version, "to_version": to_version, "diff": text}


@router.post("/playbooks/{playbook_id}/activate", response_model=PlaybookOut, responses=errors(404, 409))
def activate(playbook_id: str, who: Writer, s: Db) -> dict[str, Any]:
    """Go live with the approved version, or resume a paused playbook (approved|paused -> live; operator or admin)."""
    return transition(playbook_id, "activate", who, s)


@router.post("/playbooks/{playbook_id}/pause", response_model=PlaybookOut, responses=errors(404, 409))
def pause(playbook_id: str, who: Writer, s: Db, body: ReasonIn | None = None) -> dict[str, Any]:
    """Stop a live playbook from running (live -> paused; operator, compliance or admin)."""
    return transition(playbook_id, "pause", who, s, reason=body.reason if body else None)


@router.post("/playbooks/{playbook_id}/retire", response_model=PlaybookOut, responses=errors(404, 409))
def retire(playbook_id: str, who: Writer, s: Db, body: ReasonIn | None = None) -> dict[str, Any]:
    """Retire a playbook for good; it keeps its versions and history (operator, compliance or admin)."""
    return transition(playbook_id, "retire", who, s, reason=body.reason if body else None)


@router.get("/playbooks/{playbook_id}/preview", response_model=PreviewOut, responses=errors(400, 404, 409))
def preview(playbook_id: str, request: Request, _who: Reader, s: ReadDb,
            customer_id: str = Query(min_length=1, max_length=64, description="whose data fills the templates"),
            version: int | None = Query(default=None, ge=1, le=MAX_ID, description="default: the current version"),
            as_of: dt.date | None = None) -> dict[str, Any]:
    """The playbook's message per channel rendered for one customer (phone masked), with SMS length and segments
    and any content problem. Writes nothing."""
    from panhuo.content.preview import build_preview
    from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook

    get_playbook_or_404(s, playbook_id)
    try:
        v = repo.get_version(s, playbook_id, version)
    except LifecycleError as exc:
        raise NotFound(str(exc)) from None
    label = f"{v.playbook_id} v{v.version}"
    loaded = LoadedPlaybook(spec=validate_playbook(v.yaml_text, label), text=v.yaml_text, source=label)
    s.rollback()  # the preview reads Parquet only: end the store transaction first
    p = build_preview(workspace_of(request), loaded, customer_id=customer_id, as_of=as_of)
    return {"playbook_id": p.playbook_id, "version": v.version, "source": p.source, "customer_id": p.customer_id,
            "as_of": p.as_of, "benefit_id": p.benefit_id, "benefit_name": p.benefit_name,
            "messages": [{"channel": m.channel, "parts": m.parts, "problems": [str(i) for i in m.problems],
                          "sms": None if m.sms is None else {"chars": m.sms.chars, "segments": m.sms.segments,
                                                             "max_segments": m.sms.max_segments, "ok": m.sms.ok}}
                         for m in p.messages],
            "channels_without_template": p.channels_without_template}


DryRunner = requires("operator", "compliance", "admin", action="a dry run")


@router.get("/playbooks/{playbook_id}/dry-run", response_model=DryRunOut, responses=errors(400, 404, 409))
def dry_run(playbook_id: str, request: Request, _who: DryRunner, s: ReadDb, as_of: dt.date | None = None) -> dict[str, Any]:
    """The funnel a run would produce on ``as_of`` (default: today, Asia/Shanghai) with the live version, else the
    latest: candidates, after each guardrail, holdout, sends, and refusals by reason. Nothing is written."""
    from panhuo.runs.engine import dry_run as engine_dry_run
    from panhuo.store.models import now_shanghai

    get_playbook_or_404(s, playbook_id)
    s.rollback()  # the engine opens its own (read) transactions
    day = as_of or now_shanghai().date()
    r = engine_dry_run(workspace_of(request), playbook_id, day)
    return {"playbook_id": r.playbook_id, "version": r.version, "as_of": r.as_of, "run_key": r.run_key,
            "funnel": [{"stage": st, "customers": n} for st, n in r.funnel], "reasons": dict(r.reasons),
            "send_at": r.send_at, "deferred": r.deferred, "trigger": r.trigger, "warnings": list(r.warnings),
            "written": 0}
