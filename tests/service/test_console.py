"""The web console over TestClient: every page for every role (200 or 403), login/logout with CSRF, CSRF refusals
that write nothing, roles and four eyes on the console's forms, the form -> YAML editor with line/field errors,
script-looking input shown escaped, masked personal data and no remote asset. The real-browser flow is in
``tests/service/browser/``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from panhuo.config import Workspace
from panhuo.playbooks.loader import validate_playbook
from panhuo.service.app import create_app
from panhuo.service.console import PREFIX
from panhuo.service.console.forms import form_from_yaml, playbook_yaml
from tests.service.conftest import AS_OF, DRAFT, IN_REVIEW, LIVE, NAME, OWN, PASSWORD, PHONE, ROLE_USER, login, snapshot

__all__: list[str] = []

NASTY = "<script>alert('x')</script>\"'><img src=x onerror=alert(1)>"


@pytest.fixture
def cws(ws: Workspace) -> Workspace:
    """A private copy of the service tests' template workspace (data, users, playbooks, a run, call tasks)."""
    return ws


@pytest.fixture
def web(cws: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(cws), base_url="https://testserver", follow_redirects=False) as c:
        yield c


def _form_login(c: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the console's form; returns the session's CSRF token (read from a page's logout form)."""
    page = c.get(f"{PREFIX}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post(f"{PREFIX}/login", data={"csrf_token": token, "name": name, "password": password,
                                        "next": f"{PREFIX}/playbooks"})
    assert r.status_code == 303, r.text
    home = c.get(r.headers["location"])
    return re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)


def _form(**over: str) -> dict[str, str]:
    base = {"id": "console-wake", "name": "控制台唤醒", "purpose": "reactivation", "trigger": "schedule",
            "schedule": "every_trading_day", "at": "10:00", "window_start": "09:00", "window_end": "20:00",
            "reentry": "once_ever", "segment": "sleeping_recent", "exclude": "complained_90d",
            "benefits": "market-weekly-news", "channel_mode": "order", "channels": "app_push, sms",
            "mode": "automated", "holdout": "0.1", "allocation": "fixed", "success_event": "trade",
            "success_days": "10", "push_title": "为您准备了一份资讯", "push_body": "{{ benefit_name }}已为您准备好。",
            "sms_template": "{{ brokerage_name }}：{{ benefit_name }}已为您准备好。"}
    return {**base, **over}


def test_the_form_makes_valid_yaml_and_reads_it_back() -> None:
    text = playbook_yaml(_form())
    spec = validate_playbook(text, "form")
    assert spec.id == "console-wake" and spec.channel.channels == ["app_push", "sms"] and spec.method.holdout == 0.1
    assert spec.timing.trigger == "schedule" and spec.content is not None and spec.content.sms is not None
    back = form_from_yaml(text)
    assert {k: back[k] for k in ("id", "trigger", "at", "segment", "channels", "holdout", "sms_template")} == {
        "id": "console-wake", "trigger": "schedule", "at": "10:00", "segment": "sleeping_recent",
        "channels": "app_push, sms", "holdout": "0.1", "sms_template": "{{ brokerage_name }}：{{ benefit_name }}已为您准备好。"}
    lifecycle = validate_playbook(playbook_yaml(_form(trigger="lifecycle", transition="new_empty",
                                                      lifecycle_days="1, 3，7", reentry="every_n_trading_days",
                                                      reentry_n="5")), "form")
    assert lifecycle.timing.days == [1, 3, 7] and lifecycle.timing.reentry.n == 5


# every page of the console; the roles that may open it (the others get 403; an advisor only has 任务)
READ = {"viewer", "operator", "compliance", "admin"}
PAGES: list[tuple[str, set[str]]] = [
    ("/tiers", READ), ("/customers?id={cid}", READ), ("/playbooks", READ), (f"/playbooks/{IN_REVIEW}", READ),
    (f"/playbooks/{IN_REVIEW}?a=1&b=1", READ), ("/approvals", READ), ("/runs", READ), ("/runs/1", READ),
    ("/reports", READ), ("/benefits", READ), ("/tasks", READ | {"advisor"}), ("/fragments/roi", READ),
    ("/fragments/segment-count?name=sleeping_alive", READ), ("/fragments/rule-count?rule=logins_30d+>+0", READ), ("/playbooks/new", {"operator", "admin"}),
    (f"/playbooks/{DRAFT}/edit", {"operator", "admin"}),
]


@pytest.mark.parametrize("role", sorted(ROLE_USER))
def test_every_page_renders_for_each_role_or_is_403(role: str, web: TestClient, cws: Workspace) -> None:
    cid = OWN
    login(web, ROLE_USER[role])
    r = web.get(f"{PREFIX}/")
    if role == "advisor":
        assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/tasks"
    else:
        assert r.status_code == 200 and "总览" in r.text and "客户数" in r.text
    for path, allowed in PAGES:
        r = web.get(PREFIX + path.format(cid=cid))
        expected = 200 if role in allowed else 403
        assert r.status_code == expected, (role, path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        if expected == 403:
            assert "无权访问" in r.text
    nav = web.get(f"{PREFIX}/tasks").text
    assert ("分层" in nav) == (role != "advisor")  # a page of another role is not linked


def test_anonymous_is_sent_to_the_login_page_and_root_redirects(web: TestClient) -> None:
    assert web.get("/").headers["location"] == f"{PREFIX}/"
    r = web.get(f"{PREFIX}/approvals")
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/login?next=%2Fconsole%2Fapprovals"
    r = web.get(f"{PREFIX}/fragments/roi", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith(f"{PREFIX}/login")
    assert web.post(f"{PREFIX}/playbooks", data={"yaml": "x"}).status_code == 303  # to the login page


def test_login_form_logout_and_their_csrf(web: TestClient, cws: Workspace) -> None:
    page = web.get(f"{PREFIX}/login?next=//evil.example/x")
    assert page.status_code == 200 and "登录" in page.text
    assert re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert 'value="/console/"' in page.text  # an outside "next" is never kept (no open redirect)
    # the login form without its token, or with another one, is refused and opens no session
    r = web.post(f"{PREFIX}/login", data={"csrf_token": "forged", "name": "ops", "password": PASSWORD})
    assert r.status_code == 403 and "panhuo_session" not in r.headers.get("set-cookie", "")
    web.get(f"{PREFIX}/login")
    r = web.post(f"{PREFIX}/login", data={"csrf_token": web.cookies.get("panhuo_login_csrf"), "name": "ops",
                                          "password": "wrong-password", "next": f"{PREFIX}/approvals"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert 'name="next" value="/console/approvals"' in r.text  # the page asked for is kept for the next try
    login(web, "view")
    planted = web.cookies.get("panhuo_session")
    csrf = _form_login(web, "ops")
    assert web.cookies.get("panhuo_session") not in (None, planted)  # a login never keeps an earlier session id
    assert web.get("/api/v1/me").json()["name"] == "ops"  # the same session as the API
    current = web.cookies.get("panhuo_session")
    web.cookies.clear()
    web.cookies.set("panhuo_session", planted)
    assert web.get("/api/v1/me").status_code == 401  # the earlier session ended
    web.cookies.clear()
    web.cookies.set("panhuo_session", current)
    assert web.get("/api/v1/me").json()["name"] == "ops"
    before = snapshot(cws)
    assert web.post(f"{PREFIX}/logout", data={}).status_code == 403
    assert snapshot(cws) == before and web.get(f"{PREFIX}/playbooks").status_code == 200
    r = web.post(f"{PREFIX}/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/login"
    web.cookies.clear()
    assert web.get("/api/v1/me").status_code == 401


def test_posts_without_the_csrf_token_are_refused_and_write_nothing(web: TestClient, cws: Workspace) -> None:
    csrf = login(web, "ops")
    text = playbook_yaml(_form())
    before = snapshot(cws)
    for data, headers in (({"yaml": text}, {}), ({"yaml": text, "csrf_token": "wrong"}, {}),
                          ({"yaml": text}, {"X-CSRF-Token": "wrong"})):
        r = web.post(f"{PREFIX}/playbooks", data=data, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.text
    assert web.post(f"{PREFIX}/playbooks/{DRAFT}/submit", data={}).status_code == 403
    assert web.post(f"{PREFIX}/playbooks/{DRAFT}/dry-run/funnel", data={}).status_code == 403
    assert snapshot(cws) == before
    r = web.post(f"{PREFIX}/playbooks", data={"yaml": text}, headers={"X-CSRF-Token": csrf})  # htmx's header
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/playbooks/console-wake?saved=1"


def test_roles_and_four_eyes_on_the_console_forms(web: TestClient, cws: Workspace) -> None:
    text = playbook_yaml(_form())
    for user in ("view", "cmp", "adv"):
        csrf = login(web, user)
        before = snapshot(cws)
        assert web.post(f"{PREFIX}/playbooks", data={"yaml": text, "csrf_token": csrf}).status_code == 403
        assert web.post(f"{PREFIX}/playbooks/{DRAFT}/submit", data={"csrf_token": csrf}).status_code == 403
        assert web.post(f"{PREFIX}/playbooks/{LIVE}/pause", data={"csrf_token": csrf}).status_code == (
            303 if user == "cmp" else 403)  # compliance may pause a live playbook, as in the API
        dry = web.post(f"{PREFIX}/playbooks/{DRAFT}/dry-run/funnel", data={"csrf_token": csrf, "as_of": str(AS_OF)})
        assert dry.status_code == (200 if user == "cmp" else 403)  # a dry run writes nothing: compliance may
        if user != "cmp":
            assert snapshot(cws) == before
    csrf = login(web, "ops")
    before = snapshot(cws)
    r = web.post(f"{PREFIX}/playbooks/{IN_REVIEW}/approve", data={"csrf_token": csrf})
    assert r.status_code == 403 and snapshot(cws) == before
    # cmp_ops has compliance and operator: writes a version, submits, and may not approve it (four eyes)
    csrf = login(web, "cmp_ops")
    own = playbook_yaml(_form(id="own-work"))
    assert web.post(f"{PREFIX}/playbooks", data={"yaml": own, "csrf_token": csrf}).status_code == 303
    assert web.post(f"{PREFIX}/playbooks/own-work/submit", data={"csrf_token": csrf}).status_code == 303
    assert "您是此版本的作者" in web.get(f"{PREFIX}/approvals").text
    before = snapshot(cws)
    r = web.post(f"{PREFIX}/playbooks/own-work/approve", data={"csrf_token": csrf})
    assert r.status_code == 403 and "four eyes" in r.text and snapshot(cws) == before
    # a rejection needs a reason (409, nothing written); another compliance user approves
    csrf = login(web, "cmp")
    before = snapshot(cws)
    r = web.post(f"{PREFIX}/playbooks/own-work/reject", data={"csrf_token": csrf, "reason": " "})
    assert r.status_code == 409 and snapshot(cws) == before
    r = web.post(f"{PREFIX}/playbooks/own-work/approve", data={"csrf_token": csrf, "next": f"{PREFIX}/approvals"})
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/approvals"
    page = web.get(f"{PREFIX}/playbooks/own-work").text
    assert 'data-state="approved"' in page and "data-history" in page
    history = page[page.index("data-history"):]
    assert history.index("批准") < history.index("提交审批") < history.index("新建")  # newest first, with who
    assert "cmp_ops" in history and ">cmp<" in history


def test_editor_shows_each_issue_with_line_and_field_and_stores_nothing(web: TestClient, cws: Workspace) -> None:
    csrf = login(web, "ops")
    r = web.post(f"{PREFIX}/playbooks/form-yaml", data={**_form(holdout="0.6", at="25:00"), "csrf_token": csrf})
    assert r.status_code == 200
    issues = re.findall(r'<li data-line="(\d*)" data-field="([^"]*)">', r.text)
    assert any(f.startswith("timing.") and f.endswith(".at") and line for line, f in issues)
    yaml_text = re.search(r'<textarea class="code" id="yaml" name="yaml"[^>]*>(.*?)</textarea>', r.text, re.S).group(1)
    holdout_line = next(i for i, line in enumerate(yaml_text.splitlines(), 1) if "holdout" in line)
    assert (str(holdout_line), "method.holdout") in issues
    before = snapshot(cws)
    bad = yaml_text.replace("&#39;", "'").replace("&#34;", '"').replace("&lt;", "<").replace("&gt;", ">")
    r = web.post(f"{PREFIX}/playbooks", data={"yaml": bad.replace("&amp;", "&"), "csrf_token": csrf})
    assert r.status_code == 422 and "未保存" in r.text and "method.holdout" in r.text
    assert snapshot(cws) == before
    r = web.post(f"{PREFIX}/playbooks/validate", data={"yaml": playbook_yaml(_form()), "csrf_token": csrf})
    assert "校验通过" in r.text


def test_save_preview_submit_approve_dry_run_and_report_pages(web: TestClient, cws: Workspace) -> None:
    csrf = login(web, "ops")
    text = playbook_yaml(_form())
    r = web.post(f"{PREFIX}/playbooks/preview", data={"yaml": text, "csrf_token": csrf})
    assert r.status_code == 200 and "data-preview" in r.text and 'data-channel="sms"' in r.text
    assert "回T退订" in r.text  # the SMS rendered as it would be sent
    assert web.post(f"{PREFIX}/playbooks", data={"yaml": text, "csrf_token": csrf}).status_code == 303
    assert web.post(f"{PREFIX}/playbooks/console-wake/submit", data={"csrf_token": csrf}).status_code == 303
    csrf = login(web, "cmp")
    page = web.get(f"{PREFIX}/approvals").text
    assert 'data-approval="console-wake"' in page and "+  holdout: 0.1" in page
    assert web.post(f"{PREFIX}/playbooks/console-wake/approve", data={"csrf_token": csrf}).status_code == 303
    csrf = login(web, "ops")
    r = web.post(f"{PREFIX}/playbooks/console-wake/dry-run/funnel", data={"csrf_token": csrf, "as_of": str(AS_OF)})
    assert r.status_code == 200 and "data-funnel" in r.text and "候选客户" in r.text, r.text[:500]
    assert "经授权同意" in r.text and "经适当性" in r.text and ">after " not in r.text  # stages in Chinese
    report = web.get(f"{PREFIX}/reports")
    assert report.status_code == 200 and "报告" in report.text


def test_script_looking_input_is_shown_escaped(web: TestClient, cws: Workspace) -> None:
    csrf = login(web, "ops")
    text = playbook_yaml(_form(name=NASTY, description=NASTY))
    assert web.post(f"{PREFIX}/playbooks", data={"yaml": text, "csrf_token": csrf}).status_code == 303
    for path in ("/playbooks", "/playbooks/console-wake", f"/customers?id={NASTY}", f"/runs?playbook={NASTY}",
                 f"/reports?playbook={NASTY}"):
        page = web.get(PREFIX + path, params=None).text
        assert "<script>alert" not in page and "<img src=x" not in page, path
    page = web.get(f"{PREFIX}/playbooks").text
    assert "&lt;script&gt;alert(" in page
    r = web.post(f"{PREFIX}/playbooks/form-yaml", data={**_form(name=NASTY), "csrf_token": csrf})
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text
    assert "onerror=alert(1)>" not in web.get(f"{PREFIX}/login", params={"next": NASTY}).text


def test_customer_timeline_masks_personal_data(web: TestClient) -> None:
    login(web, "view")
    page = web.get(f"{PREFIX}/customers", params={"id": OWN}).text
    assert PHONE not in page and f"{PHONE[:3]}****{PHONE[-4:]}" in page
    assert NAME not in page
    for part in ("状态历史", "触达", "回T退订", "响应", "delivered", "market-weekly-news", "投顾任务", "已退订"):
        assert part in page, part
    timeline = page[page.index("data-timeline"):page.index("</table>", page.index("data-timeline"))]
    kinds = re.findall(r'<span class="tag">(\S+)</span>', timeline)
    assert {"状态", "触达", "响应", "权益", "任务"} <= set(kinds)
    whens = re.findall(r'<td class="date">([^<]+)</td>', timeline)
    assert whens == sorted(whens, reverse=True)  # newest first
    assert web.get(f"{PREFIX}/customers", params={"id": "no-such-customer"}).status_code == 404


def test_advisor_sees_and_records_only_their_own_tasks(web: TestClient, cws: Workspace) -> None:
    csrf = login(web, "adv")
    page = web.get(f"{PREFIX}/tasks").text
    assert 'data-task="1"' in page and 'data-task="2"' not in page  # task 2 is another advisor's customer
    before = snapshot(cws)
    r = web.post(f"{PREFIX}/tasks/2/outcome", data={"csrf_token": csrf, "outcome": "reached"})
    assert r.status_code == 403 and snapshot(cws) == before
    assert web.post(f"{PREFIX}/tasks/1/outcome", data={"outcome": "reached"}).status_code == 403  # no CSRF token
    r = web.post(f"{PREFIX}/tasks/1/outcome", data={"csrf_token": csrf, "outcome": "interested", "note": "<b>回电</b>"})
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/tasks?saved=1"
    page = web.get(r.headers["location"]).text
    assert "有意向" in page and "&lt;b&gt;回电&lt;/b&gt;" in page
    csrf = login(web, "ops")  # supervisors see every task and record none
    assert 'data-task="2"' in web.get(f"{PREFIX}/tasks").text
    assert web.post(f"{PREFIX}/tasks/2/outcome", data={"csrf_token": csrf, "outcome": "reached"}).status_code == 403


def test_pages_load_nothing_remote_and_assets_are_vendored(web: TestClient) -> None:
    login(web, "root")
    for path in ("/", "/tiers", "/playbooks", "/playbooks/new", "/reports", "/benefits"):
        r = web.get(PREFIX + path)
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", r.text), path
        assert "script-src 'self'" in r.headers["content-security-policy"]
    for name in ("htmx-2.0.11.min.js", "console.js", "console.css"):
        assert web.get(f"{PREFIX}/static/{name}").status_code == 200
    assert web.get(f"{PREFIX}/static/..%2Fqueries.py").status_code == 404


def test_a_workspace_without_data_renders_every_page_with_what_to_run_first(tmp_path) -> None:
    from panhuo.service.auth import set_password
    from panhuo.store import add_user, open_store

    ws = Workspace.open(tmp_path / "empty")
    store = open_store(ws)
    try:
        with store.session() as s:
            add_user(s, "root", ["admin"])
        with store.session() as s:
            set_password(s, "root", PASSWORD, actor="root")
    finally:
        store.dispose()
    with TestClient(create_app(ws), base_url="https://testserver", follow_redirects=False) as c:
        login(c, "root")
        assert "panhuo status" in c.get(f"{PREFIX}/").text  # no status computed yet: says what to run
        assert "panhuo tags" in c.get(f"{PREFIX}/tiers").text
        assert "暂无报告" in c.get(f"{PREFIX}/reports").text
        for path in ("/playbooks", "/playbooks/new", "/approvals", "/runs", "/benefits", "/tasks", "/fragments/roi"):
            assert c.get(PREFIX + path).status_code == 200, path


def test_segment_explorer_counts_a_rule_by_status_and_names_a_mistake(web: TestClient, cws: Workspace) -> None:
    import pyarrow.parquet as pq

    login(web, "view")
    tags = pq.read_table(sorted((cws.warehouse_dir / "tags").glob("*.parquet"))[-1], columns=["status"])
    sleeping = tags.column("status").to_pylist().count("sleeping")
    r = web.get(f"{PREFIX}/fragments/rule-count", params={"rule": "status = 'sleeping'"})
    assert r.status_code == 200 and "data-rule-count" in r.text
    assert re.search(rf"<strong>{sleeping:,}</strong> 人", r.text) and f"共 {tags.num_rows:,} 人" in r.text
    bad = web.get(f"{PREFIX}/fragments/rule-count", params={"rule": "status = 'sleeping' and logins_30x > 0"})
    assert "logins_30x" in bad.text and "data-rule-count" not in bad.text  # the unknown tag is named
    nasty = web.get(f"{PREFIX}/fragments/rule-count", params={"rule": NASTY})
    assert "<script>alert" not in nasty.text and "<img src=x" not in nasty.text


def test_console_login_is_throttled_like_the_api(web: TestClient) -> None:
    for _ in range(5):
        web.get(f"{PREFIX}/login")
        r = web.post(f"{PREFIX}/login", data={"csrf_token": web.cookies.get("panhuo_login_csrf"), "name": "ops",
                                              "password": "wrong-password"})
        assert r.status_code == 401
    web.get(f"{PREFIX}/login")
    r = web.post(f"{PREFIX}/login", data={"csrf_token": web.cookies.get("panhuo_login_csrf"), "name": "ops",
                                          "password": PASSWORD})
    assert r.status_code == 429 and "15 分钟" in r.text and "panhuo_session" not in r.headers.get("set-cookie", "")
    assert web.post("/api/v1/session", json={"name": "ops", "password": PASSWORD}).status_code == 429  # one counter


def test_report_charts_and_roi_from_a_report_dict() -> None:
    from panhuo.service.console.charts import report_view, roi_rows

    def est(e: float | None, lo: float | None, hi: float | None) -> dict[str, float | None]:
        return {"estimate": e, "ci_low": lo, "ci_high": hi}

    item = {"kind": "playbook", "id": "wake", "final": True, "groups": [
        {"arm": "all", "conversion_rate": {"treated": 0.2, "holdout": 0.1},
         "incremental_conversions": est(10.0, 2.0, 18.0), "incremental_commission_rmb": est(800.0, -100.0, 1700.0),
         "significant": {"conversions": True, "commission": False}, "cost_rmb": 400.0, "roi": None,
         "roi_note": "incremental commission not significant (95% CI includes 0): no ROI is claimed",
         "cost_per_incremental_reactivation_rmb": 40.0, "not_estimable": None},
        {"arm": "all", "tier": "T1", "conversion_rate": {"treated": 0.3, "holdout": 0.1},
         "incremental_conversions": est(6.0, 1.0, 11.0), "incremental_commission_rmb": est(900.0, 300.0, 1500.0),
         "significant": {"conversions": True, "commission": True}, "cost_rmb": 300.0,
         "roi": {"estimate": 3.0, "ci_low": 1.0, "ci_high": 5.0}, "not_estimable": None},
        {"arm": "news", "tier": "T1", "conversion_rate": {"treated": 0.5, "holdout": 0.0},
         "incremental_conversions": est(1.0, -1.0, 3.0), "significant": {}, "not_estimable": None},
        {"arm": "news", "conversion_rate": {"treated": None, "holdout": None},
         "incremental_conversions": est(None, None, None), "incremental_commission_rmb": None,
         "significant": {}, "cost_rmb": 0.0, "not_estimable": "no holdout"}]}
    v = report_view(item)
    # unmeasured arms have no bar; a tier's groups are labelled by tier; arm x tier cells are not charted
    assert [b.label for b in v["conv_bars"]] == ["all · 触达组", "all · 对照组", "分层·T1 · 触达组", "分层·T1 · 对照组"]
    assert v["conv_bars"][0].width == 2 * v["conv_bars"][1].width
    assert [b.label for b in v["inc"]] == ["all", "分层·T1", "news"]
    inc = v["inc"][0]
    assert inc.x_zero < inc.x_low < inc.x_est < inc.x_high and inc.significant  # the CI [2, 18] excludes 0
    assert v["inc"][2].estimate is None and v["com"][2].estimate is None  # shown as 无法估计, never a number
    assert not v["com"][0].significant and v["com"][0].x_low < v["com"][0].x_zero
    (row,) = roi_rows({"items": [item]})  # the overall group only, with the report's own ROI and note
    assert row["roi"] is None and row["roi_note"].startswith("增量佣金不显著")
    assert row["incremental_commission"] == "800.00元" and row["cost"] == "400.00元"
    item["groups"][0].update(roi={"estimate": 2.0, "ci_low": 1.1, "ci_high": 2.9}, roi_note=None)
    (row,) = roi_rows({"items": [item]})
    assert row["roi"] == 2.0 and row["roi_note"] is None  # incremental commission / cost, as `panhuo report` says


def test_dashboard_reactivations_match_an_independent_reading(cws: Workspace) -> None:
    """Customers from sleeping/dormant to effective in the year (by the date of their first such change) and the
    commission of their trades since, against pandas over the stored status events and the load's trades."""
    import datetime as dt

    import pandas as pd

    from panhuo.service.console.queries import Analytics, dashboard
    from panhuo.status.history import StatusStore
    from panhuo.warehouse.store import Warehouse

    d = dashboard(Analytics(cws))
    store = StatusStore.of(cws)
    manifest = store.manifest()
    events = pd.concat([pd.read_parquet(store.root / rel) for rel in manifest["events"].values()])
    baseline = min(dt.date.fromisoformat(x) for x in manifest["dates"])
    since = d.summary.as_of - dt.timedelta(days=366)
    ev = events[(events.date > baseline) & (events.date >= since) & events.from_status.isin(["sleeping", "dormant"])
                & (events.to_status == "effective")]
    first = ev.groupby("customer_id").date.min().rename("since").reset_index()
    trades = pd.read_parquet(Warehouse(cws.warehouse_dir).table_path("trades"), columns=["customer_id", "trade_date",
                                                                                          "commission_fen"])
    paid = trades.merge(first, on="customer_id")
    paid = paid[paid.trade_date >= paid.since].groupby("since").commission_fen.sum()
    expected = {day: (int(n), int(paid.get(day, 0))) for day, n in first.groupby("since").size().items()}
    assert expected, "the generated brokerage has reactivations"
    assert {r.date: (r.customers, r.commission_fen) for r in d.reactivations} == expected
    assert d.reactivated == len(first)
