"""A lean asyncio HTTP/1.1 keep-alive client: what the delivery worker posts provider requests with.

Why not httpx (measured, benchmarks/RESULTS.md "Delivery"): httpx 0.28 / httpcore 1.0.9 spend 1-2 ms of
CPU a request on loopback (an ``import sniffio`` attempt per request, the pool rescanning every queued
request against every connection on each start and end), so a worker posting with it tops out near
500 requests/s on this machine. A provider request is a small JSON POST answered by a small JSON body;
this client does that and nothing else, in a few tens of microseconds:

- ``HttpClient(base_url, headers=..., timeout=..., max_connections=...)``: one pool of keep-alive
  connections to one origin (``http`` or ``https``: TLS through :mod:`ssl` with the system's CA store
  and host name checks); at most ``max_connections`` open, idle ones reused last-in first-out, a
  connection the server closed is dropped (a request whose reused connection turns out closed before
  any byte of the answer is sent once more on a fresh connection: the usual keep-alive race, where
  the server closed the idle connection as the request went out; callers that cannot bear a resend
  must make requests idempotent, as the delivery worker does with its idempotency keys).
- ``await client.post(path_or_url, body, headers=None) -> Response`` (``status_code``, ``reason_phrase``,
  ``headers`` with lower-case names, ``content``, ``text``, ``json()``, ``url``). Responses may carry
  ``Content-Length``, ``Transfer-Encoding: chunked`` or end when the server closes; ``Connection:
  close`` is honoured; 1xx interim answers are skipped; a body larger than ``max_body`` is an error.
- ``timeout`` (seconds) bounds connecting and, separately, the wait for the complete answer of each
  request: :class:`HttpTimeout`. Refused connections, resets, a server closing mid-answer and
  unparseable answers are :class:`HttpTransportError` (``HttpTimeout`` is one too): the caller decides
  whether to retry. No redirects are followed, no proxy is used, no cookies kept.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HttpClient", "HttpTimeout", "HttpTransportError", "Response"]

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024


class HttpTransportError(Exception):
    """The request got no complete HTTP answer: connection refused or reset, bad answer, timeout."""


class HttpTimeout(HttpTransportError):
    """Connecting or waiting for the answer took longer than the client's timeout."""


class Response:
    """One HTTP answer: status, reason, headers (lower-case names), body bytes."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code", "url")

    def __init__(self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes, url: str) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = _Headers(headers)
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.url}>"


class _Headers(dict):
    """Response headers: lower-case names; ``get``/``[]`` accept any case."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.lower() if isinstance(key, str) else key)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses the answer into a future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self.loop = loop
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self._buf = bytearray()
        self._fut: asyncio.Future | None = None
        self._url = ""
        self._got_bytes = False
        # parse state of the current answer
        self._head: tuple[int, str, dict[str, str]] | None = None
        self._length: int | None = None  # Content-Length; -1: chunked; None: until close
        self._chunks: bytearray | None = None
        self._chunk_left = 0
        self._chunk_state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailers

    # asyncio callbacks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._fut is None or self._fut.done():  # bytes nobody asked for: the connection is unusable
            self.reusable = False
            if self.transport is not None:
                self.transport.close()
            return
        self._got_bytes = True
        self._buf += data
        try:
            self._parse()
        except HttpTransportError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        fut = self._fut
        if fut is None or fut.done():
            return
        if self._head is not None and self._length is None:  # a body delimited by the close
            status, reason, headers = self._head
            self._done(Response(status, reason, headers, bytes(self._buf), self._url))
            return
        what = "reset" if exc is not None else "closed"
        err = _Stale if not self._got_bytes else HttpTransportError
        fut.set_exception(err(f"connection {what} by {self._url} before the whole answer came"
                              + (f" ({exc})" if exc else "")))

    # requests ---------------------------------------------------------------------------------
    def request(self, data: bytes, url: str) -> asyncio.Future:
        self._fut = fut = self.loop.create_future()
        self._url = url
        self._got_bytes = False
        self._buf.clear()
        self._head = None
        self.transport.write(data)  # type: ignore[union-attr]
        return fut

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _done(self, response: Response) -> None:
        fut, self._fut = self._fut, None
        self._head = None
        if self._buf:  # more bytes than the answer: out of step, do not reuse
            self.reusable = False
        if fut is not None and not fut.done():
            fut.set_result(response)

    def _parse(self) -> None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise HttpTransportError(f"answer head from {self._url} larger than {MAX_HEAD} bytes")
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise HttpTransportError(f"not an HTTP/1.x answer from {self._url}: {lines[0][:80]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise HttpTransportError(f"bad header line from {self._url}: {line[:80]!r}")
                name = name.strip().lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            if 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): the real answer follows
                continue
            if parts[0] == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
                self.reusable = False
            if "close" in headers.get("connection", "").lower():
                self.reusable = False
            self._head = (status, parts[2] if len(parts) > 2 else "", headers)
            if status in (204, 304):
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._length = -1
                self._chunks = bytearray()
                self._chunk_state = 0
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise HttpTransportError(f"bad Content-Length from {self._url}: "
                                             f"{headers['content-length']!r}") from None
                if self._length < 0 or self._length > self.max_body:
                    raise HttpTransportError(f"answer body of {self._length} bytes from {self._url} refused")
            else:
                self._length = None
                self.reusable = False
        status, reason, headers = self._head
        if self._length is None:
            if len(buf) > self.max_body:
                raise HttpTransportError(f"answer body from {self._url} larger than {self.max_body} bytes")
            return
        if self._length >= 0:
            if len(buf) < self._length:
                return
            body = bytes(buf[:self._length])
            del buf[:self._length]
            self._done(Response(status, reason, headers, body, self._url))
            return
        if self._parse_chunks():
            body = bytes(self._chunks)
            self._chunks = None
            self._done(Response(status, reason, headers, body, self._url))

    def _parse_chunks(self) -> bool:
        buf, out = self._buf, self._chunks
        while True:
            if self._chunk_state == 0:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise HttpTransportError(f"bad chunk size line from {self._url}")
                    return False
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[:end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise HttpTransportError(f"bad chunk size {line[:20]!r} from {self._url}") from None
                if size == 0:
                    self._chunk_state = 3
                else:
                    if len(out) + size > self.max_body:
                        raise HttpTransportError(f"answer body from {self._url} larger than {self.max_body} bytes")
                    self._chunk_left, self._chunk_state = size, 1
            elif self._chunk_state == 1:
                if not buf:
                    return False
                take = min(self._chunk_left, len(buf))
                out += buf[:take]
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left:
                    return False
                self._chunk_state = 2
            elif self._chunk_state == 2:
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise HttpTransportError(f"chunk not followed by CRLF from {self._url}")
                del buf[:2]
                self._chunk_state = 0
            else:  # trailers up to an empty line
                end = buf.find(b"\r\n")
                if end < 0:
                    return False
                del buf[:end + 2]
                if end == 0:
                    return True


class _Stale(HttpTransportError):
    """A reused keep-alive connection was closed before any byte of the answer: safe to send again."""


class HttpClient:
    """Keep-alive connections to one origin (see the module docstring). Use ``async with`` or ``aclose()``."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0,
                 max_connections: int = 32, max_body: int = MAX_BODY,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.base_path = u.path.rstrip("/")
        self.origin = f"{u.scheme}://{u.netloc}"
        host_header = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
        if ":" in u.hostname and not host_header.startswith("["):
            host_header = f"[{u.hostname}]" + (f":{u.port}" if u.port else "")
        self.timeout = float(timeout)
        self.max_body = max_body
        self._ssl = (ssl_context or ssl.create_default_context()) if u.scheme == "https" else None
        fixed = {"Host": host_header, "User-Agent": "panhuo-delivery", "Accept": "application/json",
                 **dict(headers or {})}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every idle connection (requests in flight finish on theirs, which are then closed)."""
        self._closed = True
        closing = False
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()
                closing = True
        if closing:
            await asyncio.sleep(0)  # let the transports' close callbacks run: the sockets are closed on return

    def _target(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            u = urlsplit(path_or_url)
            if f"{u.scheme}://{u.netloc}" != self.origin:
                raise ValueError(f"{path_or_url!r} is not on this client's origin {self.origin}")
            return (u.path or "/") + (f"?{u.query}" if u.query else "")
        return self.base_path + path_or_url if path_or_url else (self.base_path or "/")

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop, self.max_body), self.host, self.port, ssl=self._ssl,
                                       server_hostname=self.host if self._ssl else None),
                self.timeout)
        except asyncio.TimeoutError:
            raise HttpTimeout(f"connecting to {self.origin} took more than {self.timeout:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise HttpTransportError(f"cannot connect to {self.origin}: {exc}") from None
        return conn

    async def post(self, path_or_url: str, body: bytes, headers: Mapping[str, str] | None = None,
                   content_type: str = "application/json") -> Response:
        """POST ``body``; the answer, whatever its status. Raises HttpTransportError / HttpTimeout."""
        if self._closed:
            raise HttpTransportError("the client is closed")
        target = self._target(path_or_url)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
        head = (f"POST {target} HTTP/1.1\r\n{self._fixed}{extra}Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        data = head.encode("latin-1") + body
        return await self._send(data, self.origin + target)

    async def get(self, path_or_url: str, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``path_or_url``; the answer, whatever its status. Raises HttpTransportError / HttpTimeout."""
        if self._closed:
            raise HttpTransportError("the client is closed")
        target = self._target(path_or_url)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
        data = f"GET {target} HTTP/1.1\r\n{self._fixed}{extra}\r\n".encode("latin-1")
        return await self._send(data, self.origin + target)

    async def _send(self, data: bytes, url: str) -> Response:
        """Send one request on a pooled keep-alive connection: an idle one the server had closed before any
        byte of the answer (the keep-alive race) is retried once on a fresh connection."""
        async with self._slots:
            for fresh in (False, True):
                conn = None
                while not fresh and self._idle:
                    c = self._idle.pop()
                    if not c.closed and c.reusable:
                        conn = c
                        break
                    if c.transport is not None:
                        c.transport.close()
                if conn is None:
                    conn = await self._connect()
                    fresh = True
                fut = conn.request(data, url)
                timer = conn.loop.call_later(self.timeout, _expire, fut, self.timeout, url)
                try:
                    response = await fut
                except _Stale:
                    if fresh:
                        raise HttpTransportError(f"connection closed by {url} before any answer") from None
                    continue  # an idle connection the server had closed: send once more on a new one
                except BaseException:
                    conn.reusable = False
                    if conn.transport is not None:
                        conn.transport.close()
                    raise
                finally:
                    timer.cancel()
                if conn.reusable and not conn.closed and not self._closed:
                    self._idle.append(conn)
                elif conn.transport is not None:
                    conn.transport.close()
                return response
        raise AssertionError("unreachable")


def _expire(fut: asyncio.Future, timeout: float, url: str) -> None:
    if not fut.done():
        fut.set_exception(HttpTimeout(f"no complete answer from {url} within {timeout:g}s"))
