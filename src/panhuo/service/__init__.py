"""The service: ``panhuo serve``, the versioned REST API (``/api/v1``) with logins, sessions, API keys and roles.

:mod:`panhuo.service.models` holds the tables (migration 0006), :mod:`panhuo.service.auth` the password,
session, throttling and API-key operations shared by the CLI and the API, :mod:`panhuo.service.deps` the
FastAPI dependencies every router uses (store session, authentication, reader, writer with CSRF, role
requirements), :mod:`panhuo.service.views` the read-side queries the API and the web console share (masked
personal data), :mod:`panhuo.service.schemas` the API's request and response bodies,
:mod:`panhuo.service.api` the routers, and :mod:`panhuo.service.app` the application factory
:func:`~panhuo.service.app.create_app`. The web console is :mod:`panhuo.service.console`.
"""

from __future__ import annotations

__all__: list[str] = []
