"""The REST API of ``panhuo serve``: :func:`create_app` builds the FastAPI application for one workspace.

Every route is under ``/api/v1``; the OpenAPI document is ``/api/v1/openapi.json`` (no interactive docs:
they would load assets from a CDN). Authentication is a console session (``POST /api/v1/session``
sets an HttpOnly, SameSite=Strict cookie and answers the CSRF token; every mutating request with the
cookie must send it back in ``X-CSRF-Token``) or an API key (``Authorization: Bearer phk_...``; a
``read`` key may only read; keys need no CSRF token). Not authenticated: 401. Authenticated but not
allowed (role, scope, CSRF, four eyes): 403, and nothing is written. Roles are checked by the same
store functions the CLI calls (:mod:`panhuo.playbooks.repository`, :mod:`panhuo.service.auth`), and
each change they make is in the audit log with who, what, before and after.

Reading playbooks and runs needs the viewer, operator, compliance or admin role (an advisor sees only
their own customers' tasks, which arrive with the console). Errors: 404 unknown playbook or run, 409
a lifecycle transition not allowed from the playbook's state, 422 an invalid playbook (every issue
with file, line and field), 429 a throttled login.
"""

# No "from __future__ import annotations": the routes' dependency aliases are local to create_app, and
# FastAPI must see them as objects, not as strings it cannot resolve.

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from panhuo import __version__
from panhuo.errors import LifecycleError, PlaybookError
from panhuo.service import auth
from panhuo.store.db import Store, open_store
from panhuo.store.errors import AccessDenied, StoreError
from panhuo.store.users import require_role

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = ["API", "COOKIE", "CSRF_HEADER", "READ_ROLES", "create_app"]

API = "/api/v1"
COOKIE = "panhuo_session"
CSRF_HEADER = "X-CSRF-Token"
READ_ROLES: tuple[str, ...] = ("viewer", "operator", "compliance", "admin")
MAX_YAML = 256 * 1024


# ---------------------------------------------------------------- request and response bodies


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    name: str
    display_name: str
    roles: list[str]
    via: str = Field(description="session or api_key")
    scope: str = Field(description="read or write")


class LoginOut(BaseModel):
    user: MeOut
    csrf_token: str
    expires_at: dt.datetime


class HealthOut(BaseModel):
    status: str
    version: str
    store: str


class VersionOut(BaseModel):
    version: int
    author: str
    created_at: dt.datetime
    content_hash: str
    source: str
    yaml_text: str


class PlaybookOut(BaseModel):
    id: str
    name: str
    state: str
    current_version: int
    review_version: int | None
    live_version: int | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class PlaybookDetailOut(PlaybookOut):
    versions: list[VersionOut]


class PlaybookIn(BaseModel):
    yaml: str = Field(min_length=1, max_length=MAX_YAML, description="the playbook's YAML text")
    source: str = Field(default="api", max_length=200, description="names the text in error messages")


class ApproveIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RunOut(BaseModel):
    id: int
    playbook_id: str
    playbook_version: int
    run_key: str
    as_of: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None
    state: str
    candidates: int
    holdout: int
    sends: int


class RunDetailOut(RunOut):
    funnel: dict[str, Any] | list[Any] | None


class IssueOut(BaseModel):
    file: str
    line: int | None
    field: str | None
    reason: str


class ErrorOut(BaseModel):
    detail: str


class InvalidOut(BaseModel):
    detail: str
    issues: list[IssueOut]


_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


# ---------------------------------------------------------------- helpers


class _NotFound(Exception):
    pass


class _Unauthenticated(Exception):
    pass


def _me(a: auth.Authenticated) -> MeOut:
    return MeOut(name=a.user.name, display_name=a.user.display_name, roles=a.user.role_names, via=a.via,
                 scope=a.scope)


def _playbook(pb: Any) -> dict[str, Any]:
    return {k: getattr(pb, k) for k in PlaybookOut.model_fields}


def _run(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in RunOut.model_fields}


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_app(workspace: "Workspace", *, cookie_secure: bool = True) -> FastAPI:
    """The API of ``workspace`` (its store is opened and migrated now). ``cookie_secure=False`` only for
    plain-HTTP development: the session cookie is then sent without TLS."""
    store: Store = open_store(workspace)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.dispose()

    app = FastAPI(title="panhuo 盘活 API", version=__version__, openapi_url=f"{API}/openapi.json", docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.workspace = workspace

    # -------------------------------------------------------- errors

    def _err(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(_Unauthenticated)
    async def _unauth(_r: Request, exc: _Unauthenticated) -> JSONResponse:
        return _err(401, str(exc) or "not authenticated", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(auth.Throttled)
    async def _throttled(_r: Request, exc: auth.Throttled) -> JSONResponse:
        return _err(429, str(exc), {"Retry-After": str(int(auth.THROTTLE_WINDOW.total_seconds()))})

    def _plain(status: int) -> Any:
        async def handler(_r: Request, exc: Exception) -> JSONResponse:
            return _err(status, str(exc))
        return handler

    # the most specific class of an exception picks its handler (Starlette walks the MRO)
    for exc_type, status in ((auth.LoginFailed, 401), (AccessDenied, 403), (_NotFound, 404),
                             (LifecycleError, 409), (StoreError, 400)):
        app.add_exception_handler(exc_type, _plain(status))

    @app.exception_handler(PlaybookError)
    async def _invalid(_r: Request, exc: PlaybookError) -> JSONResponse:
        issues = [{"file": i.file, "line": i.line, "field": i.field, "reason": i.reason} for i in exc.issues]
        return JSONResponse({"detail": f"{len(issues)} issue(s) in the playbook: nothing stored", "issues": issues},
                            status_code=422)

    # -------------------------------------------------------- authentication

    def db() -> Iterator[Session]:
        with store.session() as s:
            yield s

    def authenticated(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> auth.Authenticated:
        with store.session() as s:
            if authorization is not None:
                scheme, _, token = authorization.partition(" ")
                found = auth.key_user(s, token.strip()) if scheme.lower() == "bearer" else None
                if found is None:
                    raise _Unauthenticated("invalid, revoked or malformed API key")
                return found
            sid = request.cookies.get(COOKIE)
            found = auth.session_user(s, sid) if sid else None
            if found is None:
                raise _Unauthenticated("not logged in (POST /api/v1/session) and no API key")
            return found

    def reader(who: Annotated[auth.Authenticated, Depends(authenticated)]) -> auth.Authenticated:
        require_role(who.user, *READ_ROLES, action="reading playbooks and runs")
        return who

    def writer(
        who: Annotated[auth.Authenticated, Depends(authenticated)],
        x_csrf_token: Annotated[str | None, Header()] = None,
    ) -> auth.Authenticated:
        if who.via == "session" and not who.csrf_ok(x_csrf_token):
            raise AccessDenied(f"missing or wrong {CSRF_HEADER} header (the token from the login answer)")
        if who.via == "api_key" and who.scope != "write":
            raise AccessDenied("this API key has the read scope; changes need a write key")
        return who

    Who = Annotated[auth.Authenticated, Depends(authenticated)]
    Reader = Annotated[auth.Authenticated, Depends(reader)]
    Writer = Annotated[auth.Authenticated, Depends(writer)]
    Db = Annotated[Session, Depends(db)]

    # -------------------------------------------------------- session and health

    @app.post(f"{API}/session", response_model=LoginOut, responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
              tags=["session"])
    def log_in(body: LoginIn, request: Request, response: Response) -> LoginOut:
        """Log in with name and password: sets the session cookie and answers the CSRF token."""
        failed: auth.LoginFailed | None = None
        with store.session() as s:
            old = request.cookies.get(COOKIE)
            try:
                new = auth.login(s, body.name, body.password, ip=_client_ip(request))
            except auth.LoginFailed as exc:
                failed = exc  # commit the recorded attempt, then answer 401
            else:
                if old:
                    auth.end_session(s, old)  # a login never keeps a session id it did not issue (fixation)
        if failed is not None:
            raise failed
        response.set_cookie(COOKIE, new.session_id, max_age=auth.SESSION_HOURS * 3600, path="/", httponly=True,
                            samesite="strict", secure=cookie_secure)
        who = auth.Authenticated(user=new.user, via="session", csrf_token=new.csrf_token)
        return LoginOut(user=_me(who), csrf_token=new.csrf_token, expires_at=new.expires_at)

    @app.delete(f"{API}/session", status_code=204, responses=_ERRORS, tags=["session"])
    def log_out(request: Request, who: Writer) -> Response:
        """Log out: ends the session (CSRF token required) and clears the cookie."""
        if who.via != "session":
            raise AccessDenied("an API key has no session to end (revoke it with 'panhuo apikeys revoke')")
        with store.session() as s:
            auth.end_session(s, request.cookies.get(COOKIE, ""))
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure)
        return response

    @app.get(f"{API}/health", response_model=HealthOut, tags=["health"])
    def health(s: Db) -> HealthOut:
        """Liveness and the store's reachability (no authentication)."""
        s.execute(select(1))
        return HealthOut(status="ok", version=__version__, store=s.get_bind().dialect.name)

    @app.get(f"{API}/me", response_model=MeOut, responses=_ERRORS, tags=["session"])
    def me(who: Who) -> MeOut:
        """The user this request acts as, with roles, how it authenticated and its scope."""
        return _me(who)

    # -------------------------------------------------------- playbooks

    from panhuo.playbooks import repository as repo

    def _get_playbook(s: Session, playbook_id: str) -> Any:
        try:
            return repo.get_playbook(s, playbook_id)
        except LifecycleError as exc:
            raise _NotFound(str(exc)) from None

    @app.get(f"{API}/playbooks", response_model=list[PlaybookOut], responses=_ERRORS, tags=["playbooks"])
    def list_playbooks(_who: Reader, s: Db, state: str | None = None) -> list[dict[str, Any]]:
        """Every playbook with its state and versions in review and live (optionally only one state)."""
        return [_playbook(pb) for pb in repo.list_playbooks(s, state=state)]

    @app.get(f"{API}/playbooks/{{playbook_id}}", response_model=PlaybookDetailOut,
             responses={**_ERRORS, 404: {"model": ErrorOut}}, tags=["playbooks"])
    def get_playbook(playbook_id: str, _who: Reader, s: Db) -> dict[str, Any]:
        """One playbook with every version (author, time, hash and YAML text)."""
        pb = _get_playbook(s, playbook_id)
        versions = [{k: getattr(v, k) for k in VersionOut.model_fields} for v in pb.versions]
        return {**_playbook(pb), "versions": versions}

    def _checked(text: str, source: str) -> Any:
        """Validate and review the text exactly as ``panhuo playbook add`` does; PlaybookError lists every issue."""
        from panhuo.playbooks.loader import LoadedPlaybook, checked_in_workspace, validate_playbook

        return checked_in_workspace(LoadedPlaybook(spec=validate_playbook(text, source), text=text, source=source),
                                    workspace)

    @app.post(f"{API}/playbooks", response_model=PlaybookDetailOut, status_code=201,
              responses={**_ERRORS, 409: {"model": ErrorOut}, 422: {"model": InvalidOut}}, tags=["playbooks"])
    def add_playbook(body: PlaybookIn, who: Writer, s: Db) -> dict[str, Any]:
        """Add a playbook (version 1, draft) or the next version of the one with the same id (operator or admin).
        The YAML is validated and reviewed first; on any issue nothing is stored (422, each with file, line, field)."""
        from panhuo.playbooks.lifecycle import ACTION_ROLES

        require_role(who.user, *ACTION_ROLES["edit"], action="edit (playbook)")  # 403 before 422
        version = repo.add_version(s, _checked(body.yaml, body.source or "api"), actor=who.user.name)
        return get_playbook(version.playbook_id, who, s)

    def _transition(playbook_id: str, action: str, who: auth.Authenticated, s: Session, **kw: Any) -> dict[str, Any]:
        from panhuo.playbooks.lifecycle import ACTION_ROLES

        require_role(who.user, *ACTION_ROLES[action], action=f"{action} (playbook)")  # 403 before 404
        _get_playbook(s, playbook_id)
        pb = repo.transition(s, playbook_id, action, actor=who.user.name, **kw)
        return _playbook(pb)

    transition_errors: dict[int | str, dict[str, Any]] = {**_ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}

    @app.post(f"{API}/playbooks/{{playbook_id}}/submit", response_model=PlaybookOut, responses=transition_errors,
              tags=["playbooks"])
    def submit(playbook_id: str, who: Writer, s: Db) -> dict[str, Any]:
        """Send the latest version for compliance review (draft -> in_review; operator or admin)."""
        return _transition(playbook_id, "submit", who, s)

    @app.post(f"{API}/playbooks/{{playbook_id}}/approve", response_model=PlaybookOut, responses=transition_errors,
              tags=["playbooks"])
    def approve(playbook_id: str, who: Writer, s: Db, body: ApproveIn | None = None) -> dict[str, Any]:
        """Approve the version in review (compliance; never its own author: four eyes)."""
        return _transition(playbook_id, "approve", who, s, reason=body.note if body else None,
                           content_settings=workspace.settings.content, templates_dir=workspace.root / "templates")

    @app.post(f"{API}/playbooks/{{playbook_id}}/reject", response_model=PlaybookOut, responses=transition_errors,
              tags=["playbooks"])
    def reject(playbook_id: str, body: RejectIn, who: Writer, s: Db) -> dict[str, Any]:
        """Reject the version in review back to draft, with a reason (compliance)."""
        return _transition(playbook_id, "reject", who, s, reason=body.reason)

    # -------------------------------------------------------- runs

    @app.get(f"{API}/runs", response_model=list[RunOut], responses=_ERRORS, tags=["runs"])
    def list_runs(_who: Reader, s: Db, playbook_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Runs, newest first (optionally of one playbook; at most ``limit``, 1-1000)."""
        from panhuo.runs.models import Run

        q = select(Run).order_by(Run.id.desc()).limit(max(1, min(limit, 1000)))
        if playbook_id is not None:
            q = q.where(Run.playbook_id == playbook_id)
        return [_run(r) for r in s.execute(q).scalars()]

    @app.get(f"{API}/runs/{{run_id}}", response_model=RunDetailOut, responses={**_ERRORS, 404: {"model": ErrorOut}},
             tags=["runs"])
    def get_run(run_id: int, _who: Reader, s: Db) -> dict[str, Any]:
        """One run with its funnel (candidates, after each guardrail, holdout, sends)."""
        from panhuo.runs.models import Run

        r = s.get(Run, run_id)
        if r is None:
            raise _NotFound(f"no run {run_id}")
        return {**_run(r), "funnel": r.funnel}

    return app
