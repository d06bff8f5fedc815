"""``panhuo provider-sim``: run the SMS / push / WeChat provider simulator as its own process.

Prints the URL it listens on; on Ctrl-C or SIGTERM stops and prints what it delivered (Rich table).
The HMAC secret that signs receipts is read from an environment variable (``--secret-env``), never
from the command line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from panhuo.cli._common import console
from panhuo.errors import ConfigError

__all__ = ["parse_latency", "provider_sim_cmd", "register", "stats_table"]


def parse_latency(text: str) -> tuple[int, int]:
    """``"20:80"`` -> (20, 80); ``"50"`` -> (50, 50). ConfigError names ``--latency-ms``."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--latency-ms {text!r} is not MIN:MAX in milliseconds (e.g. 20:80)") from None
    if lo < 0 or hi < lo:
        raise ConfigError(f"--latency-ms {text!r} needs 0 <= MIN <= MAX")
    return lo, hi


def stats_table(stats: dict[str, Any]) -> Table:
    """The simulator's counters as one Rich table."""
    table = Table(title="provider-sim: what was delivered", show_header=True)
    table.add_column("counter")
    table.add_column("value", justify="right")
    for channel, n in stats["delivered"].items():
        table.add_row(f"delivered {channel}", f"{n:,}")
    for channel, n in stats.get("undelivered", {}).items():
        if n:
            table.add_row(f"failed receipt {channel}", f"{n:,}")
    table.add_row("unique keys", f"{stats['unique_keys']:,}")
    table.add_row("duplicate requests", f"{stats['duplicates']:,}")
    table.add_row("requests", f"{stats['requests']:,}")
    for kind, n in stats["faults"].items():
        table.add_row(f"fault {kind}", f"{n:,}")
    table.add_row("invalid (400)", f"{stats.get('invalid', 0):,}")
    table.add_row("unauthorized (401)", f"{stats.get('unauthorized', 0):,}")
    for kind, n in stats.get("receipts", {}).items():
        table.add_row(f"receipts {kind}", f"{n:,}")
    return table


def provider_sim_cmd(
    host: Annotated[str, typer.Option("--host", help="address to listen on (keep it loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port; 0 lets the OS pick one (printed)")] = 8765,
    token: Annotated[str, typer.Option("--token", help="the bearer token the simulator accepts")] = "sim-token",
    callback: Annotated[str | None, typer.Option("--callback", help="URL receipts and replies are POSTed to")] = None,
    secret_env: Annotated[str | None, typer.Option(
        "--secret-env", help="environment variable holding the HMAC secret that signs receipts")] = None,
    latency_ms: Annotated[str, typer.Option("--latency-ms", help="MIN:MAX response latency")] = "0:0",
    error_rate: Annotated[float, typer.Option("--error-rate", help="share answered 500/503")] = 0.0,
    rate_429: Annotated[float, typer.Option("--rate-429", help="share answered 429 (Retry-After)")] = 0.0,
    burst_429_ms: Annotated[int, typer.Option("--burst-429-ms", help="after a 429, answer 429 for this long")] = 0,
    permanent_rate: Annotated[float, typer.Option("--permanent-rate", help="share answered 400")] = 0.0,
    malformed_rate: Annotated[float, typer.Option("--malformed-rate", help="share answered 200 non-JSON")] = 0.0,
    lost_response_rate: Annotated[float, typer.Option(
        "--lost-response-rate", help="share delivered but answered 503 (response lost)")] = 0.0,
    duplicate_receipts: Annotated[float, typer.Option("--duplicate-receipts", help="share of receipts sent twice")] = 0.0,
    late_receipts: Annotated[float, typer.Option("--late-receipts", help="share of receipts sent late")] = 0.0,
    late_delay_ms: Annotated[int, typer.Option("--late-delay-ms", help="how late a late receipt is")] = 1500,
    reply_rate: Annotated[float, typer.Option("--reply-rate", help="share of delivered SMS replied to")] = 0.0,
    reply_text: Annotated[str, typer.Option("--reply-text", help="the reply (T = unsubscribe)")] = "T",
    seed: Annotated[int, typer.Option("--seed", help="fault decisions are fixed by the seed")] = 0,
) -> None:
    """Run the SMS / push / WeChat provider simulator on loopback until Ctrl-C or SIGTERM."""
    from panhuo.delivery.sim import SimConfig, SimServer

    secret = None
    if secret_env is not None:
        secret = os.environ.get(secret_env)
        if not secret:
            raise ConfigError(f"--secret-env {secret_env}: that environment variable is not set or empty")
    if callback is not None and secret is None:
        raise ConfigError("--callback needs --secret-env VAR (the HMAC secret that signs receipts)")
    config = SimConfig(
        token=token, callback_url=callback, secret=secret, latency_ms=parse_latency(latency_ms),
        error_rate=error_rate, rate_429=rate_429, burst_429_ms=burst_429_ms, permanent_rate=permanent_rate,
        malformed_rate=malformed_rate, lost_response_rate=lost_response_rate,
        duplicate_receipts=duplicate_receipts, late_receipts=late_receipts, late_delay_ms=late_delay_ms,
        reply_rate=reply_rate, reply_text=reply_text, seed=seed,
    )
    server = SimServer(config, host=host, port=port)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        console.print(f"provider-sim listening on {server.url}")
        console.print(f"  POST {server.url}/sms/send, /push/send, /wechat/send; GET /stats; POST /reset, /config")
        if callback:
            console.print(f"  receipts to {callback} (signed, X-Panhuo-Signature)")
        console.print("  Ctrl-C to stop")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(stats_table(server.stats()))
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("provider-sim")(provider_sim_cmd)
