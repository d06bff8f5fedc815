"""The worker's HTTP client (:mod:`panhuo.delivery.http`) against scripted raw servers, and provider-sim's
own HTTP/1.1 server against raw sockets: framing (Content-Length, chunked, close-delimited), keep-alive
reuse, a server closing idle connections, timeouts, refused connections, oversized answers; the
simulator's 404/405/413, chunked request bodies, ``Expect: 100-continue``, HTTP/1.0, cut-off requests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import pytest

from panhuo.delivery.channels import Message, SmsChannel
from panhuo.delivery.http import HttpClient, HttpTimeout, HttpTransportError
from panhuo.delivery.sim import SimServer

__all__: list[str] = []

Answer = Callable[[bytes], bytes | None]  # request bytes -> raw answer (None: close without answering)


async def _serve(answer: Answer, requests: list[bytes], close_after: int | None = None):
    """A raw TCP server reading one request head + Content-Length body at a time, writing ``answer``."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                requests.append(head + body)
                out = answer(head + body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                served += 1
                if out.startswith(b"HTTP/1.0") or (close_after is not None and served >= close_after):
                    break  # an HTTP/1.0 answer without a length ends with the connection
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _ok(body: bytes = b'{"provider_id":"p1"}', extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_content_length_answers_reuse_one_keep_alive_connection() -> None:
    async def main() -> None:
        got: list[bytes] = []
        server, url = await _serve(lambda req: _ok(), got)
        async with server, HttpClient(url, headers={"Authorization": "Bearer t"}, timeout=5) as c:
            for i in range(5):
                r = await c.post("/sms/send", json.dumps({"i": i}).encode())
                assert r.status_code == 200 and r.json() == {"provider_id": "p1"} and r.reason_phrase == "OK"
                assert r.headers["content-type"] == "application/json" and r.headers.get("Content-Type")
            assert len(c._idle) == 1  # one connection, reused
        assert len(got) == 5 and all(b"Authorization: Bearer t\r\n" in g for g in got)
        assert got[0].startswith(b"POST /sms/send HTTP/1.1\r\n") and got[0].endswith(b'{"i": 0}')

    asyncio.run(main())


def test_chunked_and_close_delimited_answers_and_interim_100() -> None:
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\n{\"pro\r\n10\r\nvider_id\":\"p-chu\r\n3\r\nnk\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n")
    closing = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nbusy, try later"

    async def main() -> None:
        got: list[bytes] = []
        answers = iter([chunked, closing, _ok()])
        server, url = await _serve(lambda req: next(answers), got)
        async with server, HttpClient(url, timeout=5) as c:
            r = await c.post("/x", b"{}")
            assert r.status_code == 200 and r.json() == {"provider_id": "p-chunk"}
            r = await c.post("/x", b"{}")  # same connection; ends when the server closes
            assert r.status_code == 503 and r.text == "busy, try later"
            r = await c.post("/x", b"{}")  # a new connection
            assert r.status_code == 200

    asyncio.run(main())


def test_a_server_closing_an_idle_connection_is_retried_once_on_a_fresh_one() -> None:
    async def main() -> None:
        got: list[bytes] = []
        server, url = await _serve(lambda req: _ok(), got, close_after=1)  # closes after each answer
        async with server, HttpClient(url, timeout=5) as c:
            for _ in range(3):
                assert (await c.post("/x", b"{}")).status_code == 200
        assert len(got) == 3

    asyncio.run(main())


def test_get_shares_the_pool_and_the_stale_connection_retry() -> None:
    async def main() -> None:
        got: list[bytes] = []
        server, url = await _serve(lambda req: _ok(b'{"ok":true}'), got, close_after=2)  # closes every 2nd answer
        async with server, HttpClient(url, headers={"Authorization": "Bearer t"}, timeout=5) as c:
            for i in range(5):
                r = await c.get(f"/api/v1/tiers?i={i}", headers={"Accept": "application/json"})
                assert r.status_code == 200 and r.json() == {"ok": True}
            assert (await c.post("/x", b"{}")).status_code == 200  # the same pool serves both
        assert len(got) == 6 and got[0].startswith(b"GET /api/v1/tiers?i=0 HTTP/1.1\r\n")
        assert all(b"Authorization: Bearer t\r\n" in g and b"Accept: application/json\r\n" in g for g in got[:5])
        assert b"Content-Length" not in got[0]  # a GET carries no body

    asyncio.run(main())


def test_timeouts_refusals_and_bad_answers_are_transport_errors() -> None:
    async def main() -> None:
        got: list[bytes] = []
        server, url = await _serve(lambda req: None if b"drop" in req else
                                   (b"garbage\r\n\r\n" if b"junk" in req else b""), got)
        async with server:
            async with HttpClient(url, timeout=0.3) as c:
                t0 = time.monotonic()
                with pytest.raises(HttpTimeout, match="within 0.3s"):
                    await c.post("/x", b"slow")  # the server never answers
                assert time.monotonic() - t0 < 2
                with pytest.raises(HttpTransportError, match="closed"):
                    await c.post("/x", b"drop")  # closed without an answer, twice (fresh connection too)
                with pytest.raises(HttpTransportError, match="not an HTTP/1.x answer"):
                    await c.post("/x", b"junk")
            server2, url2 = await _serve(lambda req: _ok(b"x" * 100), [])
            async with server2, HttpClient(url2, timeout=2, max_body=10) as small:
                with pytest.raises(HttpTransportError, match="refused"):
                    await small.post("/x", b"{}")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nobody listens there
        async with HttpClient(f"http://127.0.0.1:{port}", timeout=2) as c:
            with pytest.raises(HttpTransportError, match="cannot connect"):
                await c.post("/x", b"{}")
        with pytest.raises(ValueError, match="not an http"):
            HttpClient("ftp://x")

    asyncio.run(main())


def test_channel_send_turns_transport_failures_into_transient_results() -> None:
    m = Message(id=1, run_id=1, playbook_id="p", customer_id="c1", channel="sms", content={"text": "hi 回T退订"},
                idempotency_key="k1", extra={"phone": "13900000001"})

    async def main() -> None:
        server, url = await _serve(lambda req: None, [])
        async with server, HttpClient(url, timeout=2) as c:
            r = await SmsChannel().send(c, m)
            assert r.outcome == "transient" and r.reason.startswith("network error")
        server, url = await _serve(lambda req: _ok(b'{"error":"bad phone"}').replace(b"200 OK", b"400 Bad Request"), [])
        async with server, HttpClient(url, timeout=2) as c:
            r = await SmsChannel().send(c, m)
            assert r.outcome == "permanent" and r.reason == "400 bad phone"

    asyncio.run(main())


# -- provider-sim's server, raw ---------------------------------------------------------------------

def _raw(url: str, data: bytes, read_until_close: bool = False) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            final = out
            while final.startswith(b"HTTP/1.1 100 ") and b"\r\n\r\n" in final:  # interim answers
                final = final.split(b"\r\n\r\n", 1)[1]
            if not read_until_close and b"\r\n\r\n" in final:
                head, _, body = final.partition(b"\r\n\r\n")
                n = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                if len(body) >= n:
                    break
        return out


def test_provider_sim_speaks_http_1_1_properly() -> None:
    body = json.dumps({"message_id": "m", "idempotency_key": "k", "customer_id": "c", "title": "t", "body": "b"}).encode()
    with SimServer() as sim:
        out = _raw(sim.url, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 404 ") and b"no such endpoint" in out
        out = _raw(sim.url, b"GET /push/send HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 405 ") and b"Allow: POST" in out
        chunked = (b"POST /push/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sim-token\r\n"
                   b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
                   + f"{len(body[:10]):x}\r\n".encode() + body[:10] + b"\r\n"
                   + f"{len(body[10:]):x}\r\n".encode() + body[10:] + b"\r\n0\r\n\r\n")
        out = _raw(sim.url, chunked)
        assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") and b'"duplicate":false' in out
        # HTTP/1.0: answered, then the connection is closed
        out = _raw(sim.url, b"POST /push/send HTTP/1.0\r\nAuthorization: Bearer sim-token\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body, read_until_close=True)
        assert b'"duplicate":true' in out and b"connection: close" in out.lower()
        out = _raw(sim.url, b"POST /push/send HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", read_until_close=True)
        assert out.startswith(b"HTTP/1.1 413 ")
        assert _raw(sim.url, b"NOT-HTTP\r\n\r\n", read_until_close=True).startswith(b"HTTP/1.1 400 ")
        # the sender goes away with half a body: counted as cut off, nothing delivered
        host, port = sim.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"POST /sms/send HTTP/1.1\r\nAuthorization: Bearer sim-token\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while sim.stats()["cut_off"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        st = sim.stats()
        assert st["delivered"] == {"sms": 0, "app_push": 1, "wechat": 0} and st["duplicates"] == 1
        assert st["requests"] == 3  # two sends and the cut-off one (control and refused requests are not sends)
