"""``panhuo serve``: run the REST API (``/api/v1``, :mod:`panhuo.service.app`) with uvicorn.

Listens on 127.0.0.1:8000 by default. Users log in with the password set by ``panhuo users passwd``;
integrations use keys from ``panhuo apikeys create``. The session cookie is ``Secure`` unless
``--insecure-cookies`` is given (plain-HTTP development only; put TLS in front in production).
"""

from __future__ import annotations

from typing import Annotated

import typer

from panhuo.cli._common import console, workspace

__all__ = ["register", "serve_cmd"]


def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8000,
    insecure_cookies: Annotated[bool, typer.Option(
        "--insecure-cookies", help="send the session cookie over plain HTTP too (development only)")] = False,
) -> None:
    """Serve the REST API /api/v1 (OpenAPI document at /api/v1/openapi.json) until stopped (Ctrl-C)."""
    import uvicorn

    from panhuo.service.app import API, create_app

    app = create_app(workspace(), cookie_secure=not insecure_cookies)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"panhuo API on http://{shown}:{port}{API} (OpenAPI: {API}/openapi.json); Ctrl-C stops")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
