"""The service: ``panhuo serve``, the versioned REST API (``/api/v1``) with logins, sessions, API keys and roles.

:mod:`panhuo.service.models` holds the tables (migration 0006), :mod:`panhuo.service.auth` the password,
session, throttling and API-key operations shared by the CLI and the API, :mod:`panhuo.service.app`
the FastAPI application factory :func:`~panhuo.service.app.create_app`.
"""

from __future__ import annotations

__all__: list[str] = []
