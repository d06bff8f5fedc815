"""The zh-CN web console of ``panhuo serve`` (总览 分层 客户 策略 审批 运行 报告 权益 任务), served by the API's app.

Server-rendered Jinja2 pages (autoescape on) with htmx for the parts that load or submit without a
full page (the ROI table, segment counts, the editor's YAML, validation, preview and dry-run funnel).
Every asset is in this package (``static/``: htmx 2.0.11 from the npm package ``htmx.org``, its
licence, ``console.css`` and ``console.js``); charts are inline SVG computed on the server
(:mod:`panhuo.service.console.charts`); nothing loads from another origin, so it works on an intranet.

:data:`router` (routes in :mod:`panhuo.service.console.routes`) is included by
:func:`panhuo.service.app.create_app`; the pages are under ``/console/`` and ``/`` redirects there.
Sessions, CSRF and roles are the API's (:mod:`panhuo.service.auth`, :mod:`panhuo.service.deps`).
"""

from __future__ import annotations

from panhuo.service.console.routes import PREFIX, router

__all__ = ["PREFIX", "router"]
