"""The routers of the REST API (``/api/v1``), one module per resource; :func:`panhuo.service.app.create_app`
includes every router in :data:`ROUTERS`. They use the shared dependencies of :mod:`panhuo.service.deps`."""

from __future__ import annotations

from panhuo.service.api import playbooks, runs, session

__all__ = ["ROUTERS"]

ROUTERS = [session.router, playbooks.router, runs.router]
