"""The FastAPI application of ``panhuo serve``: :func:`create_app` builds it for one workspace.

Every API route is under ``/api/v1``; the OpenAPI document is ``/api/v1/openapi.json`` (no interactive docs:
they would load assets from a CDN). Authentication is a console session (``POST /api/v1/session``
sets an HttpOnly, SameSite=Strict cookie and answers the CSRF token; every mutating request with the
cookie must send it back in ``X-CSRF-Token``) or an API key (``Authorization: Bearer phk_...``; a
``read`` key may only read; keys need no CSRF token). Not authenticated: 401. Authenticated but not
allowed (role, scope, CSRF, four eyes): 403, and nothing is written. Roles are checked by the same
store functions the CLI calls (:mod:`panhuo.playbooks.repository`, :mod:`panhuo.service.auth`), and
each change they make is in the audit log with who, what, before and after.

The routes live in routers (:mod:`panhuo.service.api`, and the web console's own router); they find the
workspace and store on ``app.state`` through the shared dependencies of :mod:`panhuo.service.deps`.
Errors: 400 bad input a model cannot check, 404 unknown customer, playbook, run, segment, benefit or task,
409 a lifecycle transition not allowed from the playbook's state or data not computed yet, 422 an invalid
playbook or catalogue change (every issue with file, line and field), 429 a throttled login.

Webhook receivers: when ``PANHUO_CALLBACK_SECRET`` is set, the providers' delivery receipts and SMS replies
are taken on ``POST /callbacks/receipts`` and ``/callbacks/replies`` by the same handler as ``panhuo
callbacks serve`` (:mod:`panhuo.delivery.callbacks`: HMAC-signed, idempotent, outside the OpenAPI document
and the session/CSRF scheme, since providers sign instead of logging in).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from panhuo import __version__
from panhuo.benefits.errors import BenefitError
from panhuo.content.errors import ContentError
from panhuo.errors import ConfigError, LifecycleError, PanhuoError, PlaybookError, WarehouseError
from panhuo.service import auth
from panhuo.service.api import ROUTERS
from panhuo.service.api.metrics import Metrics, MetricsMiddleware
from panhuo.service.deps import API, COOKIE, CSRF_HEADER, READ_ROLES, NotFound, Unauthenticated
from panhuo.store.db import Store, open_store
from panhuo.store.errors import AccessDenied, StoreError

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = ["API", "COOKIE", "CSRF_HEADER", "ENV_INSECURE", "ENV_WORKSPACE", "READ_ROLES", "app_from_env", "create_app"]

ENV_WORKSPACE = "PANHUO_SERVE_WORKSPACE"  # set by 'panhuo serve --workers N' for its worker processes
ENV_INSECURE = "PANHUO_SERVE_INSECURE_COOKIES"
ENV_CALLBACK_SECRET = "PANHUO_CALLBACK_SECRET"  # the same variable `panhuo callbacks serve` reads by default


def _warm(workspace: Workspace) -> None:
    """Make the customer lookup copies in the background (see :func:`panhuo.service.views.warm`)."""
    from panhuo.service import views

    try:
        views.warm(workspace)
    except Exception:  # a warehouse not loaded yet, a file being replaced: the first request will do it
        logging.getLogger(__name__).warning("could not prepare the customer lookup copies", exc_info=True)


def _err(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauth(_r: Request, exc: Unauthenticated) -> JSONResponse:
        return _err(401, str(exc) or "not authenticated", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(auth.Throttled)
    async def _throttled(_r: Request, exc: auth.Throttled) -> JSONResponse:
        return _err(429, str(exc), {"Retry-After": str(int(auth.THROTTLE_WINDOW.total_seconds()))})

    def _plain(status: int) -> Any:
        async def handler(_r: Request, exc: Exception) -> JSONResponse:
            return _err(status, str(exc))
        return handler

    # the most specific class of an exception picks its handler (Starlette walks the MRO)
    # 400 bad input the models cannot check (unknown tag, bad role ...), 409 the data is not there yet (no tags
    # computed: run the pipeline first) or the state forbids it, 422 content that fails its checks
    for exc_type, status in ((auth.LoginFailed, 401), (AccessDenied, 403), (NotFound, 404),
                             (LifecycleError, 409), (StoreError, 400), (ConfigError, 400), (WarehouseError, 409),
                             (ContentError, 422), (PanhuoError, 400)):
        app.add_exception_handler(exc_type, _plain(status))

    @app.exception_handler(BenefitError)
    async def _benefit(_r: Request, exc: BenefitError) -> JSONResponse:
        issues = [{"file": i.file, "line": i.line, "field": i.field, "reason": i.reason} for i in exc.issues]
        return JSONResponse({"detail": str(exc), "issues": issues}, status_code=422)

    @app.exception_handler(PlaybookError)
    async def _invalid(_r: Request, exc: PlaybookError) -> JSONResponse:
        issues = [{"file": i.file, "line": i.line, "field": i.field, "reason": i.reason} for i in exc.issues]
        return JSONResponse({"detail": f"{len(issues)} issue(s) in the playbook: nothing stored", "issues": issues},
                            status_code=422)


def _callback_routes(app: FastAPI, workspace: Workspace, store: Store) -> None:
    """Add the signed receipt/reply routes of :mod:`panhuo.delivery.callbacks` when a secret is configured."""
    import os

    from panhuo.delivery.callbacks import PATHS, create_callback_app

    secret = os.environ.get(ENV_CALLBACK_SECRET)
    if not secret:
        return
    hooks = create_callback_app(store, secret, warehouse_dir=workspace.warehouse_dir)
    app.router.routes.extend(r for r in hooks.router.routes if getattr(r, "path", None) in PATHS)


def create_app(workspace: Workspace, *, cookie_secure: bool = True) -> FastAPI:
    """The API of ``workspace`` (its store is opened and migrated now). ``cookie_secure=False`` only for
    plain-HTTP development: the session cookie is then sent without TLS."""
    store: Store = open_store(workspace)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # not a daemon: a copy being written when the server stops is finished (or the process waits for it)
        # rather than cut off inside DuckDB
        warming = threading.Thread(target=_warm, args=(workspace,), name="panhuo-warm")
        warming.start()
        yield
        warming.join()
        store.dispose()

    app = FastAPI(title="panhuo 盘活 API", version=__version__, openapi_url=f"{API}/openapi.json", docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.workspace = workspace
    app.state.cookie_secure = cookie_secure
    app.state.metrics = Metrics()
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(__import__("panhuo.service.console", fromlist=["router"]).router)  # the web console
    _callback_routes(app, workspace, store)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def app_from_env() -> FastAPI:
    """The app of the workspace named in ``PANHUO_SERVE_WORKSPACE``: the factory each worker process of
    ``panhuo serve --workers N`` calls."""
    import os

    from panhuo.config import Workspace

    return create_app(Workspace.open(os.environ[ENV_WORKSPACE], create=False),
                      cookie_secure=not os.environ.get(ENV_INSECURE))
