"""The routers of the REST API (``/api/v1``), one module per resource; :func:`panhuo.service.app.create_app`
includes every router in :data:`ROUTERS`. They use the shared dependencies of :mod:`panhuo.service.deps` and the
read-side queries of :mod:`panhuo.service.views`."""

from __future__ import annotations

from panhuo.service.api import (
    audit,
    benefits,
    customers,
    metrics,
    playbooks,
    reports,
    runs,
    segments,
    session,
    tasks,
    users,
)

__all__ = ["ROUTERS"]

ROUTERS = [session.router, playbooks.router, runs.router, customers.router, segments.router, benefits.router,
           tasks.router, reports.router, audit.router, users.router, metrics.router]
