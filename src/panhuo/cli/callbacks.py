"""``panhuo callbacks serve``: the endpoint for providers' delivery receipts and SMS replies.

Serves :func:`panhuo.delivery.callbacks.create_callback_app` over the workspace's store with uvicorn
until Ctrl-C or SIGTERM, then prints the answers it gave by HTTP code. The HMAC secret that checks
the signatures is read from an environment variable (``--secret-env``, default
``PANHUO_CALLBACK_SECRET``), never from the command line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Annotated

import typer

from panhuo.cli._common import console, workspace
from panhuo.errors import ConfigError

__all__ = ["register", "serve_cmd"]

callbacks_app = typer.Typer(help="Delivery receipts and SMS replies from the providers (signed webhooks).",
                            no_args_is_help=True)


@callbacks_app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port; 0 lets the OS pick one (printed)")] = 8766,
    secret_env: Annotated[str, typer.Option(
        "--secret-env", help="environment variable holding the HMAC secret of the signatures")] = "PANHUO_CALLBACK_SECRET",
    max_age: Annotated[int, typer.Option("--max-age", help="oldest signature accepted, in seconds")] = 300,
    max_body: Annotated[int, typer.Option("--max-body", help="largest body accepted, in bytes")] = 64 * 1024,
) -> None:
    """Receive signed receipts and replies on POST /callbacks/receipts until Ctrl-C or SIGTERM."""
    from panhuo.delivery.callbacks import CallbackServer

    secret = os.environ.get(secret_env)
    if not secret:
        raise ConfigError(f"--secret-env {secret_env}: that environment variable is not set or empty")
    if max_age < 1 or max_body < 1:
        raise ConfigError("--max-age and --max-body must be at least 1")
    server = CallbackServer(workspace(), secret, host=host, port=port, max_age_seconds=max_age, max_body=max_body)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        console.print(f"callbacks listening on {server.url}")
        console.print("  receipts and replies, signed X-Panhuo-Signature; Ctrl-C to stop")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = server.app.state.stats
    console.print("answers: " + (", ".join(f"{code}: {n:,}" for code, n in sorted(stats.items())) or "none"))
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(callbacks_app, name="callbacks")
