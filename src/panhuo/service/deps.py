"""The shared FastAPI dependencies of every router of ``panhuo serve`` (the REST API and the web console).

They find the workspace and the store on ``request.app.state`` (set by
:func:`panhuo.service.app.create_app`), so any router included in the app can use them::

    from panhuo.service.deps import Db, ReadDb, Reader, Writer, requires

    @router.get("/things")
    def things(who: Reader, s: ReadDb) -> ...

- :func:`db` / :data:`Db`: a store session for the request. Safe methods (GET, HEAD, OPTIONS) get a
  read-only session (:meth:`~panhuo.store.db.Store.read_session`: on SQLite a deferred BEGIN that takes
  no writer lock, so concurrent reads never queue); other methods a write session committed when the
  request's handler returns without error. :data:`ReadDb` and :data:`WriteDb` choose explicitly.
- :func:`authenticated` / :data:`Who`: the user of the session cookie or of the ``Authorization: Bearer``
  API key; :class:`Unauthenticated` (401) otherwise.
- :func:`reader` / :data:`Reader`: an authenticated user with one of :data:`READ_ROLES`.
- :func:`writer` / :data:`Writer`: an authenticated user allowed to change things: a session must send its
  CSRF token in ``X-CSRF-Token``; an API key must have the ``write`` scope. AccessDenied (403) otherwise.
- :func:`requires`: a dependency demanding one of the given roles (403 before anything is read or written).

The role and CSRF checks only look at the authenticated user in memory, so they are ``async`` and run on the
event loop; :func:`authenticated` reads the store in the thread pool, except for a reading request whose
credential was looked up less than :data:`AUTH_CACHE_SECONDS` ago (answered from memory on the event loop).

Errors raised here and by the store map to statuses in :func:`panhuo.service.app.create_app`:
:class:`Unauthenticated` 401, ``AccessDenied`` 403, :class:`NotFound` 404.
"""

# No "from __future__ import annotations": FastAPI must see the Annotated dependency aliases as objects.

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import time

from fastapi import Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from panhuo.service import auth
from panhuo.store.db import Store
from panhuo.store.errors import AccessDenied
from panhuo.store.models import now_shanghai
from panhuo.store.users import require_role

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = [
    "API",
    "COOKIE",
    "CSRF_HEADER",
    "READ_ROLES",
    "SAFE_METHODS",
    "Db",
    "MAX_ID",
    "NotFound",
    "RowId",
    "ReadDb",
    "Reader",
    "Unauthenticated",
    "Who",
    "WriteDb",
    "Writer",
    "AUTH_CACHE_SECONDS",
    "authenticated",
    "forget_authentications",
    "client_ip",
    "db",
    "read_db",
    "reader",
    "requires",
    "store_of",
    "workspace_of",
    "write_db",
    "writer",
]

API = "/api/v1"
COOKIE = "panhuo_session"
CSRF_HEADER = "X-CSRF-Token"
READ_ROLES: tuple[str, ...] = ("viewer", "operator", "compliance", "admin")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID = 2**62  # ids and version numbers fit a 64-bit SQL integer with room to spare

#: a row id or version number in a path: 1 .. MAX_ID (a larger number is a 422, never a database error)
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


class NotFound(Exception):
    """An unknown customer, playbook, run, task ... (404)."""


class Unauthenticated(Exception):
    """No valid session cookie or API key (401)."""


def store_of(request: Request) -> Store:
    """The open store of the app serving ``request``."""
    return request.app.state.store  # type: ignore[no-any-return]


def workspace_of(request: Request) -> "Workspace":
    """The workspace of the app serving ``request``."""
    return request.app.state.workspace  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def read_db(request: Request) -> AsyncIterator[Session]:
    """A read-only session (no writer lock on SQLite); rolled back after the request.

    Asynchronous on purpose: the session connects lazily, on the handler's first query in the handler's own
    thread, so opening it costs no trip through the thread pool, and ending it (the rollback of a read) is
    instantaneous."""
    with store_of(request).read_session() as s:
        yield s


def write_db(request: Request) -> Iterator[Session]:
    """A write session: committed when the handler returns, rolled back when it raises."""
    with store_of(request).session() as s:
        yield s
    forget_authentications()  # committed: a revocation or logout it made is seen by the next read at once


def db(request: Request) -> Iterator[Session]:
    """A read-only session for GET/HEAD/OPTIONS, a write session for anything else."""
    store = store_of(request)
    with (store.read_session() if request.method in SAFE_METHODS else store.session()) as s:
        yield s
    if request.method not in SAFE_METHODS:
        forget_authentications()


#: how long a successful API-key or session lookup of a GET/HEAD/OPTIONS request is reused in this process:
#: a key revoked, a session ended or a user disabled elsewhere (the CLI, another worker) stops working for
#: reading within this time; any change request served by this process forgets every cached lookup at once
AUTH_CACHE_SECONDS = 1.0
AUTH_CACHE_SIZE = 4096
_auth_cache: "dict[tuple[str, str], tuple[float, auth.Authenticated]]" = {}


def forget_authentications() -> None:
    """Drop every cached API-key/session lookup (a change request was served: it may have revoked one)."""
    _auth_cache.clear()


def _credential(request: Request, authorization: str | None) -> tuple[str, str] | None:
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        return ("key", auth.token_hash(token)) if scheme.lower() == "bearer" and token else None
    sid = request.cookies.get(COOKIE)
    return ("session", auth.token_hash(sid)) if sid else None


def _lookup(request: Request, authorization: str | None) -> auth.Authenticated:
    with store_of(request).read_session() as s:
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            found = auth.key_user(s, token.strip()) if scheme.lower() == "bearer" else None
            if found is None:
                raise Unauthenticated("invalid, revoked or malformed API key")
        else:
            sid = request.cookies.get(COOKIE)
            found = auth.session_user(s, sid) if sid else None
            if found is None:
                raise Unauthenticated("not logged in (POST /api/v1/session) and no API key")
        found.user.role_names  # noqa: B018  (load the roles before the session closes)
        s.expunge_all()
        return found


async def authenticated(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> auth.Authenticated:
    """The user of the API key (``Authorization: Bearer phk_...``) or of the session cookie; 401 otherwise.

    A reading request (GET, HEAD, OPTIONS) reuses a successful lookup of the same credential (keyed by its
    SHA-256, never the secret) for :data:`AUTH_CACHE_SECONDS`, answered on the event loop without a store
    read; a session's expiry is still checked against the clock. Change requests always read the store, and
    forget every cached lookup (a logout or revocation served here takes effect at once)."""
    safe = request.method in SAFE_METHODS
    now = time.monotonic()
    cred = _credential(request, authorization) if safe else None
    if cred is not None:
        hit = _auth_cache.get(cred)
        if hit is not None and hit[0] > now and (hit[1].via != "session" or hit[1].expires_at is None
                                                 or hit[1].expires_at > now_shanghai()):
            request.state.user = hit[1].user.name
            return hit[1]
    else:
        forget_authentications()
    found = await run_in_threadpool(_lookup, request, authorization)
    if cred is not None:
        if len(_auth_cache) >= AUTH_CACHE_SIZE:
            _auth_cache.clear()
        _auth_cache[cred] = (now + AUTH_CACHE_SECONDS, found)
    request.state.user = found.user.name
    return found


Who = Annotated[auth.Authenticated, Depends(authenticated)]


async def reader(who: Who) -> auth.Authenticated:
    """An authenticated user with a reading role (viewer, operator, compliance, admin)."""
    require_role(who.user, *READ_ROLES, action="reading")
    return who


async def writer(who: Who, x_csrf_token: Annotated[str | None, Header()] = None) -> auth.Authenticated:
    """An authenticated user allowed to change things: the session's CSRF token, or a write-scope API key."""
    if who.via == "session" and not who.csrf_ok(x_csrf_token):
        raise AccessDenied(f"missing or wrong {CSRF_HEADER} header (the token from the login answer)")
    if who.via == "api_key" and who.scope != "write":
        raise AccessDenied("this API key has the read scope; changes need a write key")
    return who


def requires(*roles: str, action: str, write: bool = False) -> Any:
    """A dependency type: the caller must have one of ``roles`` (403 naming ``action`` otherwise); with ``write``
    also the CSRF token / write scope of :func:`writer`. Use it as a parameter's annotation::

        Approver = requires("compliance", action="approving", write=True)

        @router.post("/x")
        def x(who: Approver) -> ...
    """
    if write:
        async def dep_w(who: Annotated[auth.Authenticated, Depends(writer)]) -> auth.Authenticated:
            require_role(who.user, *roles, action=action)
            return who
        return Annotated[auth.Authenticated, Depends(dep_w)]

    async def dep(who: Who) -> auth.Authenticated:
        require_role(who.user, *roles, action=action)
        return who
    return Annotated[auth.Authenticated, Depends(dep)]


Reader = Annotated[auth.Authenticated, Depends(reader)]
Writer = Annotated[auth.Authenticated, Depends(writer)]
# scope="function": the session ends (a write one commits) when the handler returns, before the answer is sent,
# so a failed commit is an error answer, never a success that did not happen.
Db = Annotated[Session, Depends(db, scope="function")]
ReadDb = Annotated[Session, Depends(read_db, scope="function")]
WriteDb = Annotated[Session, Depends(write_db, scope="function")]
