"""``panhuo serve``: run the REST API (``/api/v1``, :mod:`panhuo.service.app`) and the web console (``/console/``) with uvicorn.

Listens on 127.0.0.1:8000 by default. Users log in with the password set by ``panhuo users passwd``;
integrations use keys from ``panhuo apikeys create``. The session cookie is ``Secure`` unless
``--insecure-cookies`` is given (plain-HTTP development only; put TLS in front in production).
``--workers N`` runs N uvicorn worker processes (each with its own store connections and metrics; the
store is migrated once before they start).
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
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the REST API /api/v1 (OpenAPI document at /api/v1/openapi.json) and the console /console/ until Ctrl-C."""
    import os

    import uvicorn

    from panhuo.service.app import API, ENV_INSECURE, ENV_WORKSPACE, create_app
    from panhuo.store import open_store

    ws = workspace()
    shown = f"[{host}]" if ":" in host else host
    console.print(f"panhuo console on http://{shown}:{port}/console/, API on http://{shown}:{port}{API} "
                  f"(OpenAPI: {API}/openapi.json); {workers} worker(s); Ctrl-C stops")
    if workers == 1:
        uvicorn.run(create_app(ws, cookie_secure=not insecure_cookies), host=host, port=port, log_level="info",
                    access_log=False)
        return
    open_store(ws).dispose()  # migrate once, before the workers open it
    os.environ[ENV_WORKSPACE] = str(ws.root)
    os.environ[ENV_INSECURE] = "1" if insecure_cookies else ""
    uvicorn.run("panhuo.service.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
