"""Logging in and out, who am I, and health: ``/api/v1/session``, ``/api/v1/me``, ``/api/v1/health``."""

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from panhuo import __version__
from panhuo.service import auth
from panhuo.service.deps import API, COOKIE, ReadDb, Who, Writer, client_ip, store_of
from panhuo.service.schemas import ERRORS, ErrorOut, HealthOut, LoginIn, LoginOut, MeOut
from panhuo.store.errors import AccessDenied

__all__ = ["me_out", "router"]

router = APIRouter(prefix=API)


def me_out(a: auth.Authenticated) -> MeOut:
    return MeOut(name=a.user.name, display_name=a.user.display_name, roles=a.user.role_names, via=a.via,
                 scope=a.scope)


def _cookie_secure(request: Request) -> bool:
    return bool(getattr(request.app.state, "cookie_secure", True))


@router.post("/session", response_model=LoginOut, responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
             tags=["session"])
def log_in(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Log in with name and password: sets the session cookie and answers the CSRF token."""
    failed: auth.LoginFailed | None = None
    with store_of(request).session() as s:
        old = request.cookies.get(COOKIE)
        try:
            new = auth.login(s, body.name, body.password, ip=client_ip(request))
        except auth.LoginFailed as exc:
            failed = exc  # commit the recorded attempt, then answer 401
        else:
            if old:
                auth.end_session(s, old)  # a login never keeps a session id it did not issue (fixation)
    if failed is not None:
        raise failed
    response.set_cookie(COOKIE, new.session_id, max_age=auth.SESSION_HOURS * 3600, path="/", httponly=True,
                        samesite="strict", secure=_cookie_secure(request))
    who = auth.Authenticated(user=new.user, via="session", csrf_token=new.csrf_token)
    return LoginOut(user=me_out(who), csrf_token=new.csrf_token, expires_at=new.expires_at)


@router.delete("/session", status_code=204, responses=ERRORS, tags=["session"])
def log_out(request: Request, who: Writer) -> Response:
    """Log out: ends the session (CSRF token required) and clears the cookie."""
    if who.via != "session":
        raise AccessDenied("an API key has no session to end (revoke it with 'panhuo apikeys revoke')")
    with store_of(request).session() as s:
        auth.end_session(s, request.cookies.get(COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_cookie_secure(request))
    return response


@router.get("/health", response_model=HealthOut, tags=["health"])
def health(s: ReadDb) -> HealthOut:
    """Liveness and the store's reachability (no authentication)."""
    s.execute(select(1))
    return HealthOut(status="ok", version=__version__, store=s.get_bind().dialect.name)


@router.get("/me", response_model=MeOut, responses=ERRORS, tags=["session"])
def me(who: Who) -> Any:
    """The user this request acts as, with roles, how it authenticated and its scope."""
    return me_out(who)
