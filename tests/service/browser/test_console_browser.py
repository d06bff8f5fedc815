"""The console end to end in a real browser: Playwright for Python driving Debian's chromium (/usr/bin/chromium,
installed by ``make install``; never ``playwright install``) against the real app served by uvicorn on a free
loopback port, over a copy of the service tests' template workspace (a small generated brokerage with
status and tags, users, playbooks, runs: ``tests/service/conftest.py``).

Flow: log in as an operator, create a playbook from the five-element form (first with a mistake, shown with
its line and field), generate and validate its YAML,
preview its messages, save and submit it; log out; log in as compliance, see the diff in the approval
queue, approve, dry run it (funnel), open the report page, check the dashboard at tablet width; log out.
No page may raise a script error or request a missing resource.

On failure a full-page screenshot of the step that failed is saved as
``.artifacts/screenshots/console-<step>.png`` in the repository (the folder is gitignored; CI keeps it as an
artefact) and the failure names that file.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from panhuo.config import Workspace
from panhuo.delivery._serve import LoopbackServer
from panhuo.service.app import create_app
from tests.conftest import REPO
from tests.service.conftest import AS_OF, PASSWORD

__all__: list[str] = []

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / ".artifacts" / "screenshots"
PLAYBOOK = "browser-wake"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed: run 'make install' (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(template_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(template_ws, root)
    app = create_app(Workspace.open(root, create=False), cookie_secure=False)  # plain HTTP on loopback
    with LoopbackServer(app) as srv:
        yield srv.url


def test_operator_writes_compliance_approves_and_dry_runs_in_chromium(server: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    step = "start"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page.set_default_timeout(30_000)  # generous: the full suite runs this on a busy machine
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and "status of" not in msg.text else None)
        page.on("response", lambda r: problems.append(f"{r.status} {r.request.method} {r.url}")
                if r.status >= 404 else None)
        expect = sync_api.expect
        expect.set_options(timeout=30_000)

        def log_in(name: str) -> None:
            page.goto(f"{server}/")
            expect(page).to_have_url(re.compile(r"/console/login\?next="))
            page.fill("#name", name)
            page.fill("#password", PASSWORD)
            page.click("button:has-text('登录')")
            expect(page.locator(f"[data-user='{name}']")).to_be_visible()

        def log_out() -> None:
            page.click("button:has-text('退出登录')")
            expect(page).to_have_url(re.compile(r"/console/login$"))
            expect(page.locator("h1")).to_have_text("登录控制台")

        try:
            step = "operator-login"
            log_in("ops")
            expect(page.locator("h1")).to_contain_text("总览")

            step = "form"
            page.click("nav >> text=策略")
            page.click("text=新建策略")
            page.fill("#f-id", PLAYBOOK)
            page.fill("#f-name", "浏览器测试唤醒")
            page.select_option("#f-trigger", "schedule")
            page.fill("#f-at", "10:00")
            page.select_option("#f-segment", "sleeping_recent")
            page.fill("#f-benefits", "market-weekly-news")
            page.fill("#f-channels", "app_push, sms")
            page.fill("#f-holdout", "0.6")  # first a mistake: the issue names its line and field
            page.click("#to-yaml")
            expect(page.locator("#issues li[data-field='method.holdout']")).to_contain_text("between 0 and 0.5")
            expect(page.locator("#issues li[data-field='method.holdout']")).to_contain_text("行")
            page.fill("#f-holdout", "0.1")
            page.fill("#f-push_title", "为您准备了一份资讯")
            page.fill("#f-push_body", "{{ benefit_name }}已为您准备好。")
            page.fill("#f-sms_template", "{{ brokerage_name }}：{{ benefit_name }}已为您准备好。")
            expect(page.locator("[data-trigger='market_event']").first).to_be_hidden()  # only this trigger's fields
            page.click("#to-yaml")
            expect(page.locator("#issues")).to_contain_text("校验通过")
            expect(page.locator("#yaml")).to_have_value(re.compile(rf"id: {PLAYBOOK}"))

            step = "preview"
            page.click("#preview-btn")
            expect(page.locator("[data-preview]")).to_be_visible()
            expect(page.locator("[data-channel='sms']")).to_contain_text("回T退订")

            step = "save-submit"
            page.click("#save-btn")
            expect(page.locator("[role=status]")).to_contain_text("已保存 v1")
            page.click("#submit-btn")
            expect(page.locator("[data-state]")).to_have_attribute("data-state", "in_review")
            log_out()

            step = "compliance-diff"
            log_in("cmp")
            page.click("nav >> text=审批")
            card = page.locator(f"[data-approval='{PLAYBOOK}']")
            expect(card.locator("[data-diff]")).to_contain_text("+  holdout: 0.1")
            expect(card.locator("[data-diff]")).to_contain_text(f"+id: {PLAYBOOK}")

            step = "approve"
            card.locator("input[name=reason]").first.fill("文案与客群已核对")
            card.locator("button:has-text('批准')").click()
            expect(page.locator(f"[data-approval='{PLAYBOOK}']")).to_have_count(0)
            page.goto(f"{server}/console/playbooks/{PLAYBOOK}")
            expect(page.locator("[data-state]")).to_have_attribute("data-state", "approved")

            step = "dry-run"
            page.fill("#as_of", AS_OF.isoformat())
            page.click("#dry-run-btn")
            funnel = page.locator("[data-funnel]")
            expect(funnel).to_contain_text(f"试运行 {PLAYBOOK} v1")
            expect(page.locator("#funnel svg[aria-label='漏斗']")).to_contain_text("候选客户")

            step = "report"
            page.click("nav >> text=报告")
            expect(page.locator("h1")).to_contain_text("报告")

            step = "tablet"
            page.set_viewport_size({"width": 768, "height": 1024})
            page.click("nav >> text=总览")
            expect(page.locator(".card").first).to_be_visible()
            expect(page.locator("section.box table").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
                "the dashboard scrolls sideways at tablet width"

            step = "logout"
            log_out()
            page.goto(f"{server}/console/approvals")
            expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fapprovals"))
            assert not problems, problems
        except Exception as exc:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"console-{step}.png"
            page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"console browser flow failed at step {step!r} (screenshot {shot}; "
                                 f"page errors {problems}): {exc}") from exc
        finally:
            browser.close()
