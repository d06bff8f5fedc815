"""One way to serve an ASGI app on loopback from a background thread (uvicorn), as a context manager.

Shared by the provider simulator (:class:`panhuo.delivery.sim.SimServer`) and the callback endpoint
(:class:`panhuo.delivery.callbacks.CallbackServer`): bind (port 0: the OS picks one), start uvicorn
on that socket in a daemon thread, wait until it serves, stop and join.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

from panhuo.errors import ConfigError

__all__ = ["LoopbackServer", "bind_tcp"]


def bind_tcp(host: str, port: int, label: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: the OS picks one), not yet listening; a ConfigError naming
    ``label`` when the address is taken or not ours. Shared by the uvicorn servers here and provider-sim."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only then (with 0,
    # Nagle holds the response body behind its headers for a delayed ACK: ~40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{label} cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


class LoopbackServer:
    """``app`` served by uvicorn in a background thread; ``label`` names it in errors and the thread."""

    label = "server"

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 2048) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.backlog = backlog
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` (the port the OS picked, once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    def start(self, timeout: float = 10.0) -> Self:
        import uvicorn

        if self._thread is not None:
            return self
        sock = bind_tcp(self.host, self.port, self.label)
        self._sock = sock
        self.port = sock.getsockname()[1]
        cfg = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on",
                             timeout_graceful_shutdown=2, backlog=self.backlog)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"{self.label}:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"{self.label} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
