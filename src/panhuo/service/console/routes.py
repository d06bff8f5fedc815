"""The console's routes (``/console/...``, and ``/`` redirecting there): server-rendered pages and htmx fragments.

Authentication is the API's session (:mod:`panhuo.service.auth`, cookie :data:`~panhuo.service.deps.COOKIE`):
the login form opens one exactly as ``POST /api/v1/session`` does (throttle, fixation, audit), so a
console login also works for the API and the other way round; API keys are not accepted here. Every
POST must carry the session's CSRF token, in the form's hidden ``csrf_token`` field or, for htmx
requests, in the ``X-CSRF-Token`` header (the page's ``<body hx-headers>``); the login form carries a
token bound to a short-lived cookie (double submit). Without it: 403 and nothing is written.

Roles are checked on the server, by the same store functions as the API and the CLI (:data:`ROLES`):
reading and previews need viewer, operator, compliance or admin (:data:`~panhuo.service.deps.READ_ROLES`);
writing a playbook, submitting and activating need operator or admin; dry runs operator, compliance or
admin; approving and rejecting need compliance and never the version's author (four eyes,
:func:`panhuo.playbooks.repository.transition`); an advisor sees the 任务 page with their own call tasks
(``advisor_id`` = their user name) and records their outcomes
(:func:`panhuo.service.api.tasks.record_outcome`), and nothing else. A refusal is a 403 page; a page of
another role is not linked from the navigation. Read-side data come from :mod:`panhuo.service.views`
(the API's) and :mod:`panhuo.service.console.queries` (dashboard, report, runs).
"""

# No "from __future__ import annotations": FastAPI must see the Annotated dependency aliases as objects.

import datetime as dt
import secrets
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from panhuo.errors import LifecycleError, PanhuoError, PlaybookError
from panhuo.service import auth, views
from panhuo.service.console import charts as cc
from panhuo.service.console import queries as q
from panhuo.service.console.forms import form_from_yaml, playbook_yaml
from panhuo.service.deps import COOKIE, CSRF_HEADER, READ_ROLES, client_ip, store_of, workspace_of
from panhuo.status.rules import STATUS_ZH, STATUSES
from panhuo.store.errors import AccessDenied, StoreError

__all__ = ["PREFIX", "ROLES", "router"]

PREFIX = "/console"
HERE = Path(__file__).parent
LOGIN_CSRF_COOKIE = "panhuo_login_csrf"
MAX_FORM = 512 * 1024
#: who may do what in the console (the API's rules: panhuo.playbooks.lifecycle.ACTION_ROLES, deps.READ_ROLES)
ROLES: dict[str, tuple[str, ...]] = {
    "read": READ_ROLES,
    "edit": ("operator", "admin"),
    "submit": ("operator", "admin"),
    "activate": ("operator", "admin"),
    "dry_run": ("operator", "compliance", "admin"),
    "preview": READ_ROLES,
    "approve": ("compliance",),
    "reject": ("compliance",),
    "pause": ("operator", "compliance", "admin"),
    "retire": ("operator", "compliance", "admin"),
    "tasks": ("advisor", *READ_ROLES),
    "outcome": ("advisor",),
}
#: the navigation: key, path, label, roles that see it
NAV: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("dashboard", "/", "总览", READ_ROLES),
    ("tiers", "/tiers", "分层", READ_ROLES),
    ("customers", "/customers", "客户", READ_ROLES),
    ("playbooks", "/playbooks", "策略", READ_ROLES),
    ("approvals", "/approvals", "审批", READ_ROLES),
    ("runs", "/runs", "运行", READ_ROLES),
    ("reports", "/reports", "报告", READ_ROLES),
    ("benefits", "/benefits", "权益", READ_ROLES),
    ("tasks", "/tasks", "任务", ROLES["tasks"]),
)
STATE_ZH = {"draft": "草稿", "in_review": "待审批", "approved": "已批准", "live": "运行中", "paused": "已暂停",
            "retired": "已退役", "running": "运行中", "done": "完成", "failed": "失败"}
CHANNEL_ZH = {"app_push": "APP 推送", "sms": "短信", "wechat": "微信", "call": "投顾电话"}
ROLE_ZH = {"viewer": "只读", "operator": "运营", "compliance": "合规", "advisor": "投顾", "admin": "管理员"}
STATIC = {"htmx-2.0.11.min.js": "text/javascript", "console.js": "text/javascript", "console.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No open console session: the page answers with the login page (303, or HX-Redirect for htmx)."""


class NotFoundPage(Exception):
    """An unknown customer, playbook or run (404 page)."""


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)
_env.globals.update(STATE_ZH=STATE_ZH, STATUS_ZH=STATUS_ZH, ROLE_ZH=ROLE_ZH, P=PREFIX, CSRF_HEADER=CSRF_HEADER,
                    MAX_FAILURES=auth.MAX_FAILURES, THROTTLE_MINUTES=int(auth.THROTTLE_WINDOW.total_seconds() // 60))
_env.filters["pct"] = lambda x, d=1: "—" if x is None else f"{x * 100:.{d}f}%"
_env.filters["num"] = lambda x: "—" if x is None else f"{x:,}"
_env.filters["rmb"] = q.rmb
_env.filters["fen"] = q.money
_env.filters["ch"] = lambda c: CHANNEL_ZH.get(c, c) if c else ""
_env.filters["dt"] = lambda x: "" if x is None else (x.strftime("%Y-%m-%d %H:%M") if isinstance(x, dt.datetime)
                                                      else str(x))


def _render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    who: auth.Authenticated | None = ctx.get("who")
    roles = set(who.user.role_names) if who is not None else set()
    nav = [(k, PREFIX + p, label) for k, p, label, allowed in NAV if roles & set(allowed)]
    html = _env.get_template(template).render(request=request, nav=nav, can=lambda action: bool(
        roles & set(ROLES[action])), **ctx)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    who = getattr(request.state, "console_who", None)
    if request.headers.get("HX-Request"):
        return _render(request, "_error.html", status, who=who, title=title, detail=detail)
    return _render(request, "error.html", status, who=who, title=title, detail=detail, active=None)


class ConsoleRoute(APIRoute):
    """Turns the console's exceptions into pages: login redirect, 403, 404, 409, 400 (never a JSON body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = f"{PREFIX}/login?next=" + urllib.parse.quote(_next_of(request), safe="")
                if request.headers.get("HX-Request"):
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except AccessDenied as exc:
                return _error_page(request, 403, "无权访问 (403)", str(exc))
            except NotFoundPage as exc:
                return _error_page(request, 404, "未找到 (404)", str(exc))
            except LifecycleError as exc:
                return _error_page(request, 409, "状态不允许此操作 (409)", str(exc))
            except (StoreError, PanhuoError) as exc:
                return _error_page(request, 400, "请求有误 (400)", str(exc))

        return route


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _next_of(request: Request) -> str:
    if request.method == "GET" and not request.headers.get("HX-Request"):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        path = request.headers.get("HX-Current-URL", "") or f"{PREFIX}/"
        path = urllib.parse.urlsplit(path).path or f"{PREFIX}/"
    return path if path.startswith(PREFIX) else f"{PREFIX}/"


def _safe_next(value: str | None) -> str:
    """Only a path inside the console (no open redirect to another site)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


# ---------------------------------------------------------------- dependencies


def _db(request: Request) -> Iterator[Session]:
    store = store_of(request)
    with (store.read_session() if request.method in ("GET", "HEAD") else store.session()) as s:
        yield s


def _who(request: Request) -> auth.Authenticated:
    sid = request.cookies.get(COOKIE)
    if not sid:
        raise LoginRequired
    with store_of(request).read_session() as s:
        found = auth.session_user(s, sid)
        if found is None:
            raise LoginRequired
        found.user.role_names  # noqa: B018  (load the roles before the session closes)
        s.expunge_all()
    request.state.console_who = found
    request.state.user = found.user.name
    return found


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (the console posts no files): the last value of each field, at most MAX_FORM bytes."""
    if request.method != "POST":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise StoreError(f"the form is larger than {MAX_FORM // 1024} KiB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError("the form is not UTF-8") from None
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


Db = Annotated[Session, Depends(_db, scope="function")]
Who = Annotated[auth.Authenticated, Depends(_who)]
Form = Annotated[dict[str, str], Depends(_form)]


def _need(who: auth.Authenticated, action: str) -> None:
    from panhuo.store.users import require_role

    require_role(who.user, *ROLES[action], action=f"the console: {action}")


def _csrf(request: Request, who: auth.Authenticated, form: dict[str, str]) -> None:
    """The session's CSRF token, from the form's hidden field or the htmx header; AccessDenied otherwise."""
    given = form.get("csrf_token") or request.headers.get(CSRF_HEADER)
    if not who.csrf_ok(given):
        raise AccessDenied("missing or wrong CSRF token: reload the page and try again (nothing was changed)")


def _analytics(request: Request) -> q.Analytics:
    an = getattr(request.app.state, "console_analytics", None)
    if an is None:
        an = request.app.state.console_analytics = q.Analytics(workspace_of(request))
    return an  # type: ignore[no-any-return]


def _segments(request: Request) -> list[dict[str, Any]]:
    """The segment library (:func:`panhuo.service.views.segments`), parsed once per change of its files."""
    ws = workspace_of(request)
    return _analytics(request).cached(("segments",), lambda _con: views.segments(ws),  # type: ignore[no-any-return]
                                      uses_con=False)


def _tier_scheme(request: Request) -> Any:
    """The workspace's tier scheme (``tiers.yaml``, else the shipped one), read once per change."""
    from panhuo.segments.tiers import load_tiers

    own = workspace_of(request).root / "tiers.yaml"
    return _analytics(request).cached(("scheme",), lambda _con: load_tiers(own, display="tiers.yaml")
                                      if own.exists() else load_tiers(), uses_con=False)


def _home(who: auth.Authenticated) -> str:
    roles = set(who.user.role_names)
    return f"{PREFIX}/" if roles & set(READ_ROLES) else f"{PREFIX}/tasks"


# ---------------------------------------------------------------- static, login, logout


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(PREFIX)
def console_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(PREFIX + "/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFoundPage(f"no static file {name!r}")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def _login_page(request: Request, status: int = 200, error: str | None = None, name: str = "",
                next_page: str | None = None) -> HTMLResponse:
    """The login form with a fresh login token (cookie + hidden field); ``next_page`` (else ``?next=``) kept."""
    token = secrets.token_urlsafe(24)
    resp = _render(request, "login.html", status, who=None, active=None, login_csrf=token, error=error, name=name,
                   next=_safe_next(next_page or request.query_params.get("next")))
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=1800, path=PREFIX, httponly=True, samesite="strict",
                    secure=bool(getattr(request.app.state, "cookie_secure", True)))
    return resp


@router.get(PREFIX + "/login")
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post(PREFIX + "/login")
def login(request: Request, form: Form) -> Response:
    """Open a session as ``POST /api/v1/session`` does; the form's token must match the login cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    given = form.get("csrf_token")
    if not cookie or not given or not secrets.compare_digest(cookie, given):
        return _login_page(request, 403, "登录表单已过期或缺少校验令牌，请重新登录。", next_page=form.get("next"))
    name, password = form.get("name", "").strip(), form.get("password", "")
    if not name or not password:
        return _login_page(request, 401, "请输入用户名和密码。", name, form.get("next"))
    failed: tuple[int, str] | None = None
    with store_of(request).session() as s:
        old = request.cookies.get(COOKIE)
        try:
            new = auth.login(s, name[:64], password[:1024], ip=client_ip(request))
        except auth.Throttled:
            minutes = int(auth.THROTTLE_WINDOW.total_seconds() // 60)
            failed = (429, f"登录失败次数过多，请 {minutes} 分钟后再试。")
        except auth.LoginFailed:
            failed = (401, "用户名或密码错误。")  # the failed attempt is committed with the session
        else:
            if old:
                auth.end_session(s, old)  # never keep a session id this login did not issue (fixation)
    if failed is not None:
        return _login_page(request, failed[0], failed[1], name, form.get("next"))
    roles = set(new.user.role_names)
    target = _safe_next(form.get("next"))
    if not roles & set(READ_ROLES):
        target = f"{PREFIX}/tasks"
    resp = RedirectResponse(target, status_code=303)
    secure = bool(getattr(request.app.state, "cookie_secure", True))
    resp.set_cookie(COOKIE, new.session_id, max_age=auth.SESSION_HOURS * 3600, path="/", httponly=True,
                    samesite="strict", secure=secure)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=secure)
    return resp


@router.post(PREFIX + "/logout")
def logout(request: Request, who: Who, form: Form) -> Response:
    _csrf(request, who, form)
    with store_of(request).session() as s:
        auth.end_session(s, request.cookies.get(COOKIE, ""))
    resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                       secure=bool(getattr(request.app.state, "cookie_secure", True)))
    return resp


# ---------------------------------------------------------------- 总览


@router.get(PREFIX + "/")
def dashboard(request: Request, who: Who) -> HTMLResponse:
    if not set(who.user.role_names) & set(READ_ROLES):
        return RedirectResponse(_home(who), status_code=303)  # type: ignore[return-value]
    _need(who, "read")
    from panhuo.errors import WarehouseError

    try:
        d = q.dashboard(_analytics(request))
    except (WarehouseError, FileNotFoundError) as exc:
        return _render(request, "dashboard.html", who=who, active="dashboard", d=None, missing=str(exc))
    s = d.summary
    status_bars = cc.status_bars(s)
    trend = cc.trend(s)
    react = cc.reactivation_columns(d.reactivations)
    return _render(request, "dashboard.html", who=who, active="dashboard", d=d, s=s, status_bars=status_bars,
                   trend=trend, react=react, statuses=STATUSES, colors=cc.COLORS, missing=None)


@router.get(PREFIX + "/fragments/roi")
def roi_fragment(request: Request, who: Who, s: Db) -> HTMLResponse:
    """The ROI table of the dashboard (loaded by htmx after the page: the estimate takes a moment)."""
    _need(who, "read")
    data = q.report(_analytics(request), s)
    return _render(request, "_roi.html", who=who, items=cc.roi_rows(data) if data else [])


# ---------------------------------------------------------------- 分层


@router.get(PREFIX + "/tiers")
def tiers_page(request: Request, who: Who) -> HTMLResponse:
    _need(who, "read")
    from panhuo.errors import WarehouseError

    ws = workspace_of(request)
    segs = _segments(request)
    try:
        data = views.tiers(ws)
    except (WarehouseError, FileNotFoundError) as exc:
        return _render(request, "tiers.html", who=who, active="tiers", rows=None, missing=str(exc), segments=segs)
    return _render(request, "tiers.html", who=who, active="tiers", rows=cc.tier_rows(_tier_scheme(request), data["tiers"]),
                   as_of=data["as_of"], missing=None, segments=segs)


@router.get(PREFIX + "/fragments/segment-count")
def segment_count(request: Request, who: Who, name: str) -> HTMLResponse:
    _need(who, "read")
    try:
        d = views.segment_detail(workspace_of(request), name)
    except PanhuoError as exc:
        return _render(request, "_count.html", who=who, error=str(exc))
    return _render(request, "_count.html", who=who, n=d["customers"], as_of=d["as_of"], error=None)


@router.get(PREFIX + "/fragments/rule-count")
def rule_count(request: Request, who: Who, rule: str = "") -> HTMLResponse:
    """htmx: how many customers an ad-hoc rule selects, by status (the segment explorer)."""
    _need(who, "read")
    rule = rule.strip()[:4000]
    if not rule:
        return _render(request, "_rule.html", who=who, r=None, error="请输入规则，例如 status = 'sleeping' and logins_30d > 0")
    try:
        r = q.rule_count(_analytics(request), rule)
    except PanhuoError as exc:
        return _render(request, "_rule.html", who=who, r=None, error=str(exc))
    return _render(request, "_rule.html", who=who, r=r, error=None, statuses=STATUSES)


# ---------------------------------------------------------------- 客户


@router.get(PREFIX + "/customers")
def customers(request: Request, who: Who, s: Db, id: str = "") -> HTMLResponse:  # noqa: A002
    _need(who, "read")
    view = None
    missing = False
    cid = id.strip()[:64]
    if cid:
        view = views.customer_view(workspace_of(request), s, cid)
        missing = view is None
    return _render(request, "customers.html", status=404 if missing else 200, who=who, active="customers",
                   cid=cid, view=view, missing=missing, timeline=_timeline(view) if view else [])


def _when(v: Any) -> str:
    text = "" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v))
    return text.replace("T", " ")[:16]


def _timeline(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One customer's events newest first: ``(when, kind, what)`` from status changes, messages, receipts and
    replies, benefits issued and call tasks (the sections below the timeline have the details)."""
    rows: list[tuple[str, str, str]] = []
    for h in view.get("status_history", []):
        what = (f"首次计算：{STATUS_ZH.get(h['to_status'], h['to_status'])}" if h.get("baseline") else
                f"{STATUS_ZH.get(h['from_status'], h['from_status']) if h['from_status'] else '新开户'} → "
                f"{STATUS_ZH.get(h['to_status'], h['to_status']) if h['to_status'] else '不再计入'}")
        rows.append((_when(h["date"]), "状态", what))
    for m in view.get("messages", []):
        rows.append((_when(m.get("sent_at") or m.get("send_after")), "触达",
                     f"{m['playbook_id']} · {CHANNEL_ZH.get(m['channel'], m['channel'])} · {m['status']}"))
    for e in view.get("responses", []):
        rows.append((_when(e.get("at") or e.get("received_at")), "响应",
                     f"{e['event']} · {CHANNEL_ZH.get(e['channel'], e['channel'])}"))
    for b in view.get("benefits", []):
        rows.append((_when(b.get("issued_at")), "权益", f"{b['benefit_id']} · 运行 #{b['run_id']}"))
    for t in view.get("call_tasks", []):
        rows.append((_when(t.get("due_date")), "任务", f"{t['playbook_id']} · {t.get('outcome') or '待跟进'}"))
    return sorted(rows, key=lambda r: r[0], reverse=True)


# ---------------------------------------------------------------- 策略


def _repo() -> Any:
    from panhuo.playbooks import repository

    return repository


def _playbook_or_404(s: Session, playbook_id: str) -> Any:
    try:
        return _repo().get_playbook(s, playbook_id)
    except LifecycleError as exc:
        raise NotFoundPage(str(exc)) from None


@router.get(PREFIX + "/playbooks")
def playbooks(request: Request, who: Who, s: Db, state: str = "") -> HTMLResponse:
    _need(who, "read")
    rows = _repo().list_playbooks(s, state=state or None)
    return _render(request, "playbooks.html", who=who, active="playbooks", rows=rows, state=state)


def _editor(request: Request, who: auth.Authenticated, *, fields: dict[str, str], yaml_text: str,
            issues: list[Any] | None = None, status: int = 200, base: Any = None) -> HTMLResponse:
    from panhuo.benefits import load_catalogue

    ws = workspace_of(request)
    try:
        catalogue = sorted(load_catalogue(ws).items.values(), key=lambda b: b.id)
    except PanhuoError:
        catalogue = []
    try:
        segs = _segments(request)
    except PanhuoError:
        segs = []
    return _render(request, "editor.html", status, who=who, active="playbooks", f=fields, yaml_text=yaml_text,
                   issues=issues, catalogue=catalogue, segments=segs, base=base)


DEFAULT_FORM = {"purpose": "reactivation", "trigger": "schedule", "schedule": "every_trading_day", "at": "10:00",
                "window_start": "09:00", "window_end": "20:00", "reentry": "once_ever", "segment": "sleeping_alive",
                "exclude": "complained_90d", "channel_mode": "order", "channels": "app_push, sms",
                "mode": "automated", "holdout": "0.1", "allocation": "fixed", "success_event": "trade",
                "success_days": "10"}


@router.get(PREFIX + "/playbooks/new")
def new_playbook(request: Request, who: Who) -> HTMLResponse:
    _need(who, "edit")
    return _editor(request, who, fields=dict(DEFAULT_FORM), yaml_text="")


@router.get(PREFIX + "/playbooks/{playbook_id}/edit")
def edit_playbook(request: Request, playbook_id: str, who: Who, s: Db) -> HTMLResponse:
    _need(who, "edit")
    pb = _playbook_or_404(s, playbook_id)
    text = _repo().get_version(s, playbook_id).yaml_text
    return _editor(request, who, fields=form_from_yaml(text), yaml_text=text, base=pb)


@router.post(PREFIX + "/playbooks/form-yaml")
def form_to_yaml(request: Request, who: Who, form: Form) -> HTMLResponse:
    """htmx: the form's fields -> YAML (into the editor) and its validation."""
    _csrf(request, who, form)
    _need(who, "edit")
    text = playbook_yaml(form)
    return _render(request, "_yaml.html", who=who, yaml_text=text, issues=_issues(request, text), oob=True)


def _issues(request: Request, text: str) -> list[Any]:
    """Every issue the API's POST /playbooks would report for ``text`` ([] when it would be stored)."""
    from panhuo.playbooks.loader import LoadedPlaybook, checked_in_workspace, validate_playbook

    try:
        checked_in_workspace(LoadedPlaybook(spec=validate_playbook(text, "console"), text=text, source="console"),
                             workspace_of(request))
    except PlaybookError as exc:
        return list(exc.issues)
    return []


@router.post(PREFIX + "/playbooks/validate")
def validate(request: Request, who: Who, form: Form) -> HTMLResponse:
    """htmx: check the YAML as ``panhuo playbook validate`` does; every issue with line and field."""
    _csrf(request, who, form)
    _need(who, "edit")
    text = form.get("yaml", "")
    return _render(request, "_issues.html", who=who, issues=_issues(request, text), checked=True)


@router.post(PREFIX + "/playbooks/preview")
def preview(request: Request, who: Who, form: Form) -> HTMLResponse:
    """htmx: the messages of the YAML (or of a stored version) rendered for one customer, masked."""
    _csrf(request, who, form)
    _need(who, "preview")
    from panhuo.content.preview import build_preview
    from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook

    text, source = form.get("yaml", ""), "console"
    if form.get("playbook_id"):
        with store_of(request).read_session() as s:
            version = int(form["version"]) if form.get("version", "").isdigit() else None
            try:
                v = _repo().get_version(s, form["playbook_id"], version)
            except LifecycleError as exc:
                raise NotFoundPage(str(exc)) from None
            text, source = v.yaml_text, f"{v.playbook_id} v{v.version}"
    try:
        loaded = LoadedPlaybook(spec=validate_playbook(text, source), text=text, source=source)
        p = build_preview(workspace_of(request), loaded, customer_id=form.get("customer") or None, seed=7)
    except PlaybookError as exc:
        return _render(request, "_issues.html", who=who, issues=list(exc.issues), checked=True)
    except PanhuoError as exc:
        return _render(request, "_preview.html", who=who, p=None, error=str(exc))
    return _render(request, "_preview.html", who=who, p=p, error=None)


@router.post(PREFIX + "/playbooks")
def save_playbook(request: Request, who: Who, form: Form) -> Response:
    """Store the YAML as a new playbook or its next version (operator/admin); on any issue nothing is stored."""
    _csrf(request, who, form)
    _need(who, "edit")
    from panhuo.playbooks.loader import LoadedPlaybook, checked_in_workspace, validate_playbook

    text = form.get("yaml", "")
    if not text.strip() and form.get("from_form"):
        text = playbook_yaml(form)
    try:
        loaded = checked_in_workspace(LoadedPlaybook(spec=validate_playbook(text, "console"), text=text,
                                                     source="console"), workspace_of(request))
    except PlaybookError as exc:
        return _editor(request, who, fields=form_from_yaml(text) or dict(form), yaml_text=text,
                       issues=list(exc.issues), status=422)
    with store_of(request).session() as s:
        v = _repo().add_version(s, loaded, actor=who.user.name)
        pid, number = v.playbook_id, v.version
    return RedirectResponse(f"{PREFIX}/playbooks/{urllib.parse.quote(pid)}?saved={number}", status_code=303)


def _diff_lines(text: str) -> list[tuple[str, str]]:
    kind = {"+": "add", "-": "del", "@": "hunk"}
    return [(("head" if line.startswith(("+++", "---")) else kind.get(line[:1], "ctx")), line)
            for line in text.splitlines()]


def _review_diff(s: Session, pb: Any) -> tuple[str, list[tuple[str, str]]]:
    """The diff a reviewer sees: the version in review against the live version, else the one before it."""
    import difflib

    new = pb.review_version or pb.current_version
    base = pb.live_version if pb.live_version and pb.live_version != new else (new - 1 if new > 1 else None)
    vb = _repo().get_version(s, pb.id, new)
    if base is None:
        text = "".join(difflib.unified_diff([], vb.yaml_text.splitlines(keepends=True), fromfile="(新策略)",
                                            tofile=f"{pb.id} v{new} ({vb.author})"))
        return f"新策略 v{new}（无旧版本）", _diff_lines(text)
    label = "运行中版本" if base == pb.live_version else "上一版本"
    return f"v{base}（{label}）→ v{new}", _diff_lines(_repo().diff_versions(s, pb.id, base, new))


@router.get(PREFIX + "/playbooks/{playbook_id}")
def playbook_detail(request: Request, playbook_id: str, who: Who, s: Db, version: int | None = None,
                    a: int | None = None, b: int | None = None, saved: int | None = None) -> HTMLResponse:
    _need(who, "read")
    pb = _playbook_or_404(s, playbook_id)
    try:
        v = _repo().get_version(s, playbook_id, version)
    except LifecycleError as exc:
        raise NotFoundPage(str(exc)) from None
    if a and b:
        try:
            diff = (f"v{a} → v{b}", _diff_lines(_repo().diff_versions(s, playbook_id, a, b)))
        except LifecycleError as exc:
            raise NotFoundPage(str(exc)) from None
    else:
        diff = _review_diff(s, pb)
    from panhuo.playbooks.lifecycle import TRANSITIONS

    return _render(request, "playbook.html", who=who, active="playbooks", pb=pb, v=v, diff=diff, saved=saved,
                   actions=[a for a, (sources, _t) in TRANSITIONS.items() if pb.state in sources],
                   history=views.audit_entries(s, entity="playbook", entity_id=pb.id, limit=50), runs=q.runs(s, playbook_id, limit=20),
                   yaml_lines=list(enumerate(v.yaml_text.splitlines(), start=1)))


@router.post(PREFIX + "/playbooks/{playbook_id}/{action}")
def transition(request: Request, playbook_id: str, action: str, who: Who, form: Form) -> Response:
    """submit | approve | reject | activate | pause | retire, as the API and the CLI (roles, four eyes, audit)."""
    _csrf(request, who, form)
    if action not in ("submit", "approve", "reject", "activate", "pause", "retire"):
        raise NotFoundPage(f"no action {action!r}")
    _need(who, action)
    ws = workspace_of(request)
    reason = form.get("reason", "").strip() or None
    with store_of(request).session() as s:
        _playbook_or_404(s, playbook_id)
        kw: dict[str, Any] = {}
        if action == "approve":
            kw = {"content_settings": ws.settings.content, "templates_dir": ws.root / "templates"}
        _repo().transition(s, playbook_id, action, actor=who.user.name, reason=reason, **kw)
    back = _safe_next(form.get("next")) if form.get("next") else f"{PREFIX}/playbooks/{urllib.parse.quote(playbook_id)}"
    return RedirectResponse(back, status_code=303)


@router.post(PREFIX + "/playbooks/{playbook_id}/dry-run/funnel")
def dry_run(request: Request, playbook_id: str, who: Who, form: Form) -> HTMLResponse:
    """htmx: the funnel a run would produce at the as-of date (live version, else the latest); writes nothing."""
    _csrf(request, who, form)
    _need(who, "dry_run")
    from panhuo.runs.engine import dry_run as run_dry
    from panhuo.store.models import now_shanghai

    with store_of(request).read_session() as s:
        _playbook_or_404(s, playbook_id)
    try:
        day = dt.date.fromisoformat(form["as_of"]) if form.get("as_of") else now_shanghai().date()
    except ValueError:
        return _render(request, "_funnel.html", who=who, report=None, error=f"日期无效：{form.get('as_of')!r}")
    try:
        report = run_dry(workspace_of(request), playbook_id, day)  # opens its own engine and read transactions
    except PanhuoError as exc:
        return _render(request, "_funnel.html", who=who, report=None, error=str(exc))
    return _render(request, "_funnel.html", who=who, report=report, bars=cc.funnel_bars(report.funnel),
                   reasons=sorted(report.reasons.items(), key=lambda kv: (-kv[1], kv[0])), error=None, day=day)


# ---------------------------------------------------------------- 审批


@router.get(PREFIX + "/approvals")
def approvals(request: Request, who: Who, s: Db) -> HTMLResponse:
    _need(who, "read")
    queue = []
    for pb in _repo().list_playbooks(s, state="in_review"):
        v = _repo().get_version(s, pb.id, pb.review_version)
        queue.append({"pb": pb, "v": v, "diff": _review_diff(s, pb), "own": v.author == who.user.name})
    return _render(request, "approvals.html", who=who, active="approvals", queue=queue)


# ---------------------------------------------------------------- 运行


@router.get(PREFIX + "/runs")
def runs_page(request: Request, who: Who, s: Db, playbook: str = "") -> HTMLResponse:
    _need(who, "read")
    rows = q.runs(s, playbook or None)
    return _render(request, "runs.html", who=who, active="runs", rows=rows, playbook=playbook)


@router.get(PREFIX + "/runs/{run_id}")
def run_detail(request: Request, run_id: int, who: Who, s: Db) -> HTMLResponse:
    _need(who, "read")
    from panhuo.runs.models import Run

    run = s.get(Run, run_id)
    if run is None:
        raise NotFoundPage(f"no run {run_id}")
    stages, reasons, error = q.funnel_of(run)
    return _render(request, "run.html", who=who, active="runs", run=run, bars=cc.funnel_bars(stages),
                   reasons=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])), error=error)


# ---------------------------------------------------------------- 报告


@router.get(PREFIX + "/reports")
def reports(request: Request, who: Who, s: Db, playbook: str = "") -> HTMLResponse:
    _need(who, "read")
    error = None
    try:
        data = q.report(_analytics(request), s, playbook or None)
    except PanhuoError as exc:
        data, error = None, str(exc)
    items = [cc.report_view(item) for item in (data or {}).get("items", [])]
    return _render(request, "reports.html", who=who, active="reports", data=data, items=items, error=error,
                   playbook=playbook)


# ---------------------------------------------------------------- 权益, 任务


@router.get(PREFIX + "/benefits")
def benefits(request: Request, who: Who, s: Db) -> HTMLResponse:
    _need(who, "read")
    error = None
    try:
        rows = views.benefits(workspace_of(request), s)
    except PanhuoError as exc:
        rows, error = [], str(exc)
    return _render(request, "benefits.html", who=who, active="benefits", rows=rows, error=error)


@router.get(PREFIX + "/tasks")
def tasks(request: Request, who: Who, s: Db, saved: int | None = None) -> HTMLResponse:
    """Every call task for the reading roles; an advisor's own (``advisor_id`` = user name) for an advisor."""
    _need(who, "tasks")
    from panhuo.delivery.models import CALL_OUTCOMES

    everyone = bool(set(who.user.role_names) & set(READ_ROLES))
    rows = views.call_tasks(s, advisor=None if everyone else who.user.name, limit=500)
    rows.sort(key=lambda t: (t["outcome"] is not None, t["due_date"], t["id"]))
    return _render(request, "tasks.html", who=who, active="tasks", rows=rows, everyone=everyone,
                   outcomes=CALL_OUTCOMES, saved=saved)


@router.post(PREFIX + "/tasks/{task_id}/outcome")
def task_outcome(request: Request, task_id: int, who: Who, form: Form) -> Response:
    """An advisor records the outcome of a call on their own customer's task (as the API does; audited)."""
    _csrf(request, who, form)
    _need(who, "outcome")
    from panhuo.service.api.tasks import record_outcome
    from panhuo.service.deps import NotFound

    note = form.get("note", "").strip()[:2000] or None
    try:
        with store_of(request).session() as s:
            record_outcome(s, task_id, form.get("outcome", ""), note, who=who)
    except NotFound as exc:
        raise NotFoundPage(str(exc)) from None
    return RedirectResponse(f"{PREFIX}/tasks?saved={task_id}", status_code=303)
