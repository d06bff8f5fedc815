"""The provider simulator: a real HTTP server on loopback that behaves like SMS, push and WeChat providers.

Used by the tests, the benchmarks and ``make demo`` (``panhuo provider-sim``); in-process through
:class:`SimServer` (a background thread on ``127.0.0.1``, an OS-picked port by default). It is served
by its own small HTTP/1.1 server (:class:`_SimProtocol`: an ``asyncio.Protocol``, keep-alive,
Content-Length and chunked bodies) rather than uvicorn/h11: on this 2-CPU machine uvicorn served about
2,000 requests/s, below the 3,000 messages/s the delivery benchmark must measure; this one serves
about 14,000 to the worker's client. :func:`create_app` is the same simulator as an ASGI app.

The provider contract (one server, every channel):

- ``POST /sms/send`` ``{"message_id", "idempotency_key", "phone", "text"}`` (text at most 500 chars,
  phone a mainland mobile number, ``+86``/``86`` prefix allowed);
  ``POST /push/send`` ``{"message_id", "idempotency_key", "customer_id", "title", "body"}``;
  ``POST /wechat/send`` ``{"message_id", "idempotency_key", "openid", "template_id", "data": {str: str}}``.
  Header ``Authorization: Bearer <token>``, else ``401``.
- ``200 {"provider_id", "status": "accepted", "duplicate"}``: the same idempotency key (per channel:
  each channel is its own provider) always gets the same ``provider_id`` and is delivered and counted
  once, also under concurrent requests. ``429`` with ``Retry-After`` (seconds), ``500``/``503``
  (transient), ``400 {"error"}`` (permanent), or, in the *malformed* fault, ``200`` with a non-JSON body.
- Receipts, when a callback URL and secret are set: ``POST <callback>`` with ``{"provider_id",
  "message_id", "channel": "sms|app_push|wechat", "event": "delivered|failed|opened|clicked", "at"}``
  and SMS replies ``{"event": "reply", "channel": "sms", "phone", "text", "at"}``; header
  ``X-Panhuo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + raw body)>`` (:func:`sign`).
  Receipts go through a bounded queue and a few sender tasks (httpx, retried on 5xx/connection errors).
- ``GET /stats``, ``POST /reset`` (counters and keys), ``GET``/``POST /config`` (faults), ``GET /health``;
  these control endpoints need no token (loopback, tests).

Faults (:class:`SimConfig`). A decision is made per request *before* delivery, from a hash of
``seed``, channel, idempotency key and the key's attempt number, so a run is reproducible whatever
the interleaving and a retry of a failed key gets a fresh decision. A request answered 429, 5xx,
400 or malformed is NOT delivered. One exception, ``lost_response_rate``: the message IS delivered
but the answer is a ``503`` (the response was lost), so the client's retry with the same key gets
``200 {"duplicate": true}`` and the same ``provider_id``. A repeat of a key already delivered is
always answered ``200 {"duplicate": true}`` (no fault, counted in ``duplicates``). ``burst_429_ms`` turns every 429 into a
burst: the channel answers 429 to everything for that long (time-based, so not reproducible).
Receipt faults: ``failed_receipt_rate`` (accepted, then the carrier reports ``failed``: not counted
as delivered), ``duplicate_receipts`` (the status receipt sent twice), ``late_receipts`` (sent after
``late_delay_ms``, the ``at`` stays the delivery time), ``open_rate``/``click_rate`` (push, WeChat),
``reply_rate`` (a share of delivered SMS answered with ``reply_text``, ``"T"`` = unsubscribe).

Memory: delivered keys are kept in one set per channel (the ``provider_id`` is derived from the
key, so nothing else is stored); keys that faulted keep an attempt count until delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from panhuo.errors import ConfigError
from panhuo.store.models import now_shanghai

__all__ = [
    "CHANNELS",
    "SIGNATURE_HEADER",
    "SimConfig",
    "SimServer",
    "create_app",
    "sign",
    "verify_signature",
]

CHANNELS: tuple[str, ...] = ("sms", "app_push", "wechat")
SIGNATURE_HEADER = "X-Panhuo-Signature"
SMS_MAX_CHARS = 500
_PATHS = {"sms": "/sms/send", "app_push": "/push/send", "wechat": "/wechat/send"}
_ID_PREFIX = {"sms": "SMS", "app_push": "PUSH", "wechat": "WX"}
_PHONE = re.compile(r"^(?:\+?86)?1\d{10}$")
_RATES = ("error_rate", "rate_429", "permanent_rate", "malformed_rate", "lost_response_rate",
          "duplicate_receipts", "late_receipts", "reply_rate", "failed_receipt_rate", "open_rate",
          "click_rate")
# Response faults, in the order their shares are laid on [0, 1).
_RESPONSE_FAULTS = (("permanent_rate", "400"), ("rate_429", "429"), ("error_rate", "5xx"),
                    ("malformed_rate", "malformed"), ("lost_response_rate", "lost_response"))
_NOT_BY_HTTP = frozenset({"token", "secret", "receipt_queue_max"})
_SENDERS = 8
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimConfig:
    """What the simulator accepts and which faults it injects (shares are in [0, 1])."""

    token: str = "sim-token"
    callback_url: str | None = None
    secret: str | None = field(default=None, repr=False)
    latency_ms: tuple[int, int] = (0, 0)
    error_rate: float = 0.0
    rate_429: float = 0.0
    permanent_rate: float = 0.0
    malformed_rate: float = 0.0
    lost_response_rate: float = 0.0
    burst_429_ms: int = 0
    retry_after_s: int = 1
    duplicate_receipts: float = 0.0
    late_receipts: float = 0.0
    late_delay_ms: int = 1500
    failed_receipt_rate: float = 0.0
    open_rate: float = 0.0
    click_rate: float = 0.0
    reply_rate: float = 0.0
    reply_text: str = "T"
    seed: int = 0
    receipt_queue_max: int = 100_000

    def checked(self) -> SimConfig:
        """This configuration, normalised (``latency_ms`` a tuple); ConfigError names a bad field."""
        lat = self.latency_ms
        if isinstance(lat, (int, float)):
            lat = (int(lat), int(lat))
        try:
            lo, hi = (int(v) for v in lat)
        except (TypeError, ValueError):
            raise ConfigError(f"provider-sim latency_ms: {self.latency_ms!r} is not [min, max]") from None
        if lo < 0 or hi < lo:
            raise ConfigError(f"provider-sim latency_ms: [{lo}, {hi}] needs 0 <= min <= max")
        for name in _RATES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"provider-sim {name}: {value!r} is not a share between 0 and 1")
        total = sum(getattr(self, name) for name, _ in _RESPONSE_FAULTS)
        if total > 1.0 + 1e-9:
            raise ConfigError(f"provider-sim: the response faults add up to {total:.3f}, more than 1")
        for name in ("burst_429_ms", "retry_after_s", "late_delay_ms", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"provider-sim {name}: {value!r} is not a whole number >= 0")
        if self.receipt_queue_max < 1:
            raise ConfigError("provider-sim receipt_queue_max: must be at least 1")
        if not isinstance(self.reply_text, str) or not isinstance(self.token, str) or not self.token:
            raise ConfigError("provider-sim: token and reply_text must be text (token not empty)")
        if self.callback_url is not None:
            if not str(self.callback_url).startswith(("http://", "https://")):
                raise ConfigError(f"provider-sim callback_url: {self.callback_url!r} is not an http(s) URL")
            if not self.secret:
                raise ConfigError("provider-sim: a callback URL needs the HMAC secret to sign receipts")
        return dataclasses.replace(self, latency_ms=(lo, hi))

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the token and the secret."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("token", "secret")}
        out["latency_ms"] = list(self.latency_ms)
        return out


def sign(secret: str | bytes, body: bytes, t: int | None = None) -> str:
    """The ``X-Panhuo-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    t = int(time.time()) if t is None else int(t)
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str | bytes, body: bytes, header: str | None, tolerance_s: int = 300,
                     now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance_s`` of ``now``."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, t).split(",v1=", 1)[1], given)


def _uniform(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``parts`` (the same inputs, the same decision)."""
    text = "|".join([str(seed), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2.0**64


def _provider_id(channel: str, key: str) -> str:
    return f"{_ID_PREFIX[channel]}-{hashlib.sha256(f'{channel}:{key}'.encode()).hexdigest()[:24]}"


def _now_iso() -> str:
    return now_shanghai().isoformat(timespec="milliseconds")


class _Reply(NamedTuple):
    """An answer of the simulator: status, body, content type, extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), "application/json",
                  headers)


def _accepted(provider_id: str, duplicate: bool) -> _Reply:
    return _Reply(200, (f'{{"provider_id":"{provider_id}","status":"accepted","duplicate":'
                        f'{"true" if duplicate else "false"}}}').encode())


_CONTROL: dict[str, tuple[str, ...]] = {"/stats": ("GET",), "/reset": ("POST",), "/config": ("GET", "POST"),
                                         "/health": ("GET",)}


# -- request validation -------------------------------------------------------------------------

def _text(body: dict, name: str, empty_ok: bool = False) -> str:
    value = body.get(name)
    if value is None:
        raise ValueError(f"missing field {name}")
    if not isinstance(value, str):
        raise ValueError(f"field {name} must be a string")
    if not value and not empty_ok:
        raise ValueError(f"field {name} is empty")
    return value


def _validate(channel: str, body: Any) -> dict[str, str]:
    """The fields the simulator keeps from a send request; ValueError says what is wrong (-> 400)."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    out = {"message_id": _text(body, "message_id"), "idempotency_key": _text(body, "idempotency_key")}
    if channel == "sms":
        phone = _text(body, "phone")
        if not _PHONE.match(phone):
            raise ValueError(f"invalid phone {phone!r}")
        text = _text(body, "text")
        if len(text) > SMS_MAX_CHARS:
            raise ValueError(f"text is {len(text)} chars, more than {SMS_MAX_CHARS}")
        out["phone"] = phone
    elif channel == "app_push":
        _text(body, "customer_id")
        _text(body, "title")
        _text(body, "body", empty_ok=True)
    else:
        _text(body, "openid")
        _text(body, "template_id")
        data = body.get("data")
        if not isinstance(data, dict):
            raise ValueError("missing field data" if data is None else "field data must be an object")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ValueError("field data must map strings to strings")
    return out


# -- state ----------------------------------------------------------------------------------------

@dataclass
class _Batch:
    """Events to POST one after another (a message's status, then opened/clicked/reply)."""

    url: str
    secret: str
    bodies: list[dict[str, Any]]


class _SimState:
    """Counters, delivered keys, the fault configuration and the receipt machinery of one app."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config.checked()
        self.lock = threading.Lock()
        self.queue: asyncio.Queue[_Batch] | None = None
        self.delayed: asyncio.Queue[tuple[float, _Batch]] | None = None
        self.tasks: list[asyncio.Task] = []
        self.client: httpx.AsyncClient | None = None
        self.pending = 0  # receipt bodies queued, delayed or being sent
        self.receipts = {"sent": 0, "rejected": 0, "failed": 0, "replies": 0}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.keys: dict[str, set[str]] = {c: set() for c in CHANNELS}
            self.attempts: dict[tuple[str, str], int] = {}
            self.delivered = dict.fromkeys(CHANNELS, 0)
            self.undelivered = dict.fromkeys(CHANNELS, 0)
            self.duplicates = 0
            self.requests = 0
            self.unauthorized = 0
            self.invalid = 0
            self.cut_off = 0
            self.faults = {"429": 0, "5xx": 0, "400": 0, "malformed": 0, "lost_response": 0}
            self.burst_until = dict.fromkeys(CHANNELS, 0.0)
            for k in self.receipts:
                self.receipts[k] = 0

    def configure(self, **changes: Any) -> SimConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(SimConfig)}
        if unknown:
            raise ConfigError(f"provider-sim: unknown setting(s) {', '.join(sorted(unknown))}")
        with self.lock:
            self.config = dataclasses.replace(self.config, **changes).checked()
            return self.config

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "delivered": dict(self.delivered),
                "unique_keys": sum(len(s) for s in self.keys.values()),
                "duplicates": self.duplicates,
                "requests": self.requests,
                "faults": dict(self.faults),
                "undelivered": dict(self.undelivered),
                "invalid": self.invalid,
                "unauthorized": self.unauthorized,
                "cut_off": self.cut_off,
                "receipts": {**self.receipts, "pending": self.pending},
            }

    # receipts --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the queues, the httpx client and the sender tasks (once, on the server's loop)."""
        if self.queue is not None:
            return
        size = self.config.receipt_queue_max
        self.queue, self.delayed = asyncio.Queue(size), asyncio.Queue(size)
        self.client = httpx.AsyncClient(timeout=5.0)
        self.tasks = [asyncio.create_task(self._sender()) for _ in range(_SENDERS)]
        self.tasks.append(asyncio.create_task(self._mover()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        if self.client is not None:
            await self.client.aclose()
        self.queue = self.delayed = self.client = None

    async def enqueue(self, batch: _Batch, delay_s: float = 0.0) -> None:
        await self.start()
        with self.lock:
            self.pending += len(batch.bodies)
        if delay_s > 0:
            await self.delayed.put((time.monotonic() + delay_s, batch))
        else:
            await self.queue.put(batch)  # bounded: a full queue slows the senders' clients down

    async def _mover(self) -> None:
        # Late receipts share one delay, so the delayed queue is in due order.
        while True:
            due, batch = await self.delayed.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.queue.put(batch)

    async def _sender(self) -> None:
        while True:
            batch = await self.queue.get()
            try:
                for body in batch.bodies:
                    outcome = await self._post(batch.url, batch.secret, body)
                    with self.lock:
                        self.receipts[outcome] += 1
                        if outcome == "sent" and body["event"] == "reply":
                            self.receipts["replies"] += 1
                        self.pending -= 1
            finally:
                self.queue.task_done()

    async def _post(self, url: str, secret: str, body: dict[str, Any]) -> str:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        for attempt in range(4):
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, raw)}
            try:
                resp = await self.client.post(url, content=raw, headers=headers)
                if 200 <= resp.status_code < 300:
                    return "sent"
                if resp.status_code < 500 and resp.status_code != 429:
                    return "rejected"
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05 * 2**attempt)
        return "failed"

    # sending ------------------------------------------------------------------------------------

    def count_cut_off(self) -> None:
        """A send request whose sender went away (killed) before its whole body arrived: nothing delivered."""
        with self.lock:
            self.requests += 1
            self.cut_off += 1

    def begin(self, channel: str, auth: str, raw: bytes) -> _Reply | tuple[dict[str, str], float]:
        """Check the token and the body of a send request: a refusal, or (its fields, the latency to apply)."""
        with self.lock:
            self.requests += 1
            req_no = self.requests
            cfg = self.config
        if not hmac.compare_digest(auth.encode(), f"Bearer {cfg.token}".encode()):
            with self.lock:
                self.unauthorized += 1
            return _json(401, {"error": "unauthorized"})
        try:
            fields = _validate(channel, json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            reason = str(exc) if not isinstance(exc, json.JSONDecodeError) else "body is not JSON"
            with self.lock:
                self.invalid += 1
                self.faults["400"] += 1
            return _json(400, {"error": reason})
        lo, hi = cfg.latency_ms
        delay = 0.0
        if hi > 0:
            delay = (lo + (hi - lo) * _uniform(cfg.seed, "latency", channel, fields["idempotency_key"], req_no)) / 1000
        return fields, delay

    def decide(self, channel: str, fields: dict[str, str]) -> tuple[_Reply, tuple | None]:
        """Deliver (or fault) one checked request: the answer, and the receipts to send (arguments of
        `send_receipts`) or None."""
        key = fields["idempotency_key"]
        fault: str | None = None
        failed = False
        with self.lock:
            cfg = self.config
            keys = self.keys[channel]
            duplicate = key in keys
            if duplicate:
                self.duplicates += 1
            else:
                now = time.monotonic()
                if self.burst_until[channel] > now:
                    fault = "429"
                else:
                    attempt = self.attempts.get((channel, key), 0)
                    u = _uniform(cfg.seed, "fault", channel, key, attempt)
                    edge = 0.0
                    for name, kind in _RESPONSE_FAULTS:
                        edge += getattr(cfg, name)
                        if u < edge:
                            fault = kind
                            break
                    if fault == "429" and cfg.burst_429_ms > 0:
                        self.burst_until[channel] = now + cfg.burst_429_ms / 1000
                if fault is None or fault == "lost_response":
                    keys.add(key)
                    self.attempts.pop((channel, key), None)
                    failed = bool(cfg.failed_receipt_rate) and \
                        _uniform(cfg.seed, "failed", channel, key) < cfg.failed_receipt_rate
                    (self.undelivered if failed else self.delivered)[channel] += 1
                else:
                    self.attempts[(channel, key)] = self.attempts.get((channel, key), 0) + 1
                if fault is not None:
                    self.faults[fault] += 1

        provider_id = _provider_id(channel, key)
        if fault in ("400", "429", "5xx", "malformed"):
            return self._fault_response(fault, cfg, channel, key), None
        job = (cfg, channel, fields, provider_id, failed) if not duplicate and cfg.callback_url and cfg.secret else None
        if fault == "lost_response":
            return _json(503, {"error": "service unavailable"}), job
        return _accepted(provider_id, duplicate), job

    async def handle_send(self, channel: str, auth: str, raw: bytes | None) -> _Reply:
        """One send request (``raw`` None: its body never fully arrived), start to finish."""
        if raw is None:
            self.count_cut_off()
            return _Reply(400, b"", "text/plain")
        first = self.begin(channel, auth, raw)
        if isinstance(first, _Reply):
            return first
        fields, delay = first
        if delay:
            await asyncio.sleep(delay)
        reply, job = self.decide(channel, fields)
        if job is not None:
            await self.send_receipts(*job)
        return reply

    def _fault_response(self, fault: str, cfg: SimConfig, channel: str, key: str) -> _Reply:
        if fault == "400":
            return _json(400, {"error": "rejected by the provider (simulated permanent failure)"})
        if fault == "429":
            with self.lock:
                left = self.burst_until[channel] - time.monotonic()
            after = max(cfg.retry_after_s, math.ceil(left)) if left > 0 else cfg.retry_after_s
            return _json(429, {"error": "too many requests"}, (("Retry-After", str(after)),))
        if fault == "5xx":
            status = 500 if _uniform(cfg.seed, "5xx", channel, key) < 0.5 else 503
            return _json(status, {"error": "provider error (simulated)"})
        return _Reply(200, b"<html><body>OK</body></html>", "text/html; charset=utf-8")

    async def send_receipts(self, cfg: SimConfig, channel: str, fields: dict[str, str], provider_id: str,
                        failed: bool) -> None:
        key = fields["idempotency_key"]
        at = _now_iso()
        status = {"provider_id": provider_id, "message_id": fields["message_id"], "channel": channel,
                  "event": "failed" if failed else "delivered", "at": at}
        after: list[dict[str, Any]] = []
        if not failed and channel != "sms" and _uniform(cfg.seed, "open", channel, key) < cfg.open_rate:
            after.append({**status, "event": "opened"})
            if _uniform(cfg.seed, "click", channel, key) < cfg.click_rate:
                after.append({**status, "event": "clicked"})
        if not failed and channel == "sms" and _uniform(cfg.seed, "reply", channel, key) < cfg.reply_rate:
            after.append({"event": "reply", "channel": "sms", "phone": fields["phone"], "text": cfg.reply_text,
                          "at": at})
        late = _uniform(cfg.seed, "late", channel, key) < cfg.late_receipts
        twice = _uniform(cfg.seed, "duplicate", channel, key) < cfg.duplicate_receipts
        url, secret = cfg.callback_url, cfg.secret
        if late:
            await self.enqueue(_Batch(url, secret, [status] + ([status] if twice else [])),
                               delay_s=cfg.late_delay_ms / 1000)
            if after:
                await self.enqueue(_Batch(url, secret, after))
        else:
            await self.enqueue(_Batch(url, secret, [status] + ([status] if twice else []) + after))


def _control(state: _SimState, method: str, path: str, raw: bytes) -> _Reply:
    """The control endpoints: ``GET /stats``, ``POST /reset``, ``GET``/``POST /config``, ``GET /health``."""
    allowed = _CONTROL.get(path)
    if allowed is None:
        return _json(404, {"error": f"no such endpoint {path}"})
    if method not in allowed:
        return _json(405, {"error": f"{method} not allowed on {path}"}, (("Allow", ", ".join(allowed)),))
    if path == "/stats":
        return _json(200, state.stats())
    if path == "/health":
        return _json(200, {"ok": True})
    if path == "/reset":
        state.reset()
        return _json(200, {"ok": True})
    if method == "GET":
        return _json(200, state.config.public())
    try:
        changes = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _json(400, {"error": "body is not JSON"})
    if not isinstance(changes, dict):
        return _json(400, {"error": "body must be a JSON object"})
    refused = sorted(set(changes) & _NOT_BY_HTTP)
    if refused:
        return _json(400, {"error": f"{', '.join(refused)} cannot be set over HTTP"})
    try:
        new = state.configure(**changes)
    except (ConfigError, TypeError) as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, new.public())


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app (to mount it under another ASGI server); its state is ``app.state.sim``.

    :class:`SimServer` and ``panhuo provider-sim`` serve the same state with :class:`_SimProtocol`
    instead, several times faster than uvicorn/h11 on loopback (see the module docstring).
    """
    state = _SimState(config or SimConfig())

    def respond(reply: _Reply) -> Response:
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type,
                        headers=dict(reply.headers))

    def sender(channel: str):
        async def endpoint(request: Request) -> Response:
            try:
                raw: bytes | None = await request.body()
            except ClientDisconnect:
                raw = None
            return respond(await state.handle_send(channel, request.headers.get("authorization", ""), raw))
        return endpoint

    async def control(request: Request) -> Response:
        raw = await request.body() if request.method == "POST" else b""
        return respond(_control(state, request.method, request.url.path, raw))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.close()

    routes = [Route(path, sender(ch), methods=["POST"]) for ch, path in _PATHS.items()]
    routes += [Route(path, control, methods=list(methods)) for path, methods in _CONTROL.items()]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = state
    return app


# -- the HTTP/1.1 server ---------------------------------------------------------------------------

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}
_SEND_CHANNEL = {path: ch for ch, path in _PATHS.items()}
MAX_REQUEST_HEAD = 16 * 1024
MAX_REQUEST_BODY = 1024 * 1024


class _SimProtocol(asyncio.Protocol):
    """One client connection of the simulator: HTTP/1.1 keep-alive, requests answered in order.

    Parses request heads and ``Content-Length`` or chunked bodies by hand (the simulator's requests are
    small JSON POSTs); a send with no latency and no receipts to queue is answered inside
    ``data_received`` (no task, no coroutine), anything else by a task, the connection's next request
    waiting for it. ``Expect: 100-continue`` is answered; a head over 16 KiB is 431, a body over 1 MiB 413
    (and the connection closed); HTTP/1.0 and ``Connection: close`` close after the answer.
    """

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.state = server.state
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.head: tuple[str, str, dict[str, str], bool] | None = None  # method, path, headers, keep-alive
        self.length = 0  # body bytes expected; -1: chunked
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._conns.discard(self)
        if self.head is not None and self.head[1] in _SEND_CHANNEL and not self.busy:
            self.state.count_cut_off()  # the head came, the whole body never did
        self.head = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    def _write(self, reply: _Reply, keep_alive: bool) -> None:
        if self.closed:
            return
        extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers)
        head = (f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}\r\n"
                f"content-type: {reply.content_type}\r\ncontent-length: {len(reply.body)}\r\n{extra}"
                + ("" if keep_alive else "connection: close\r\n") + "\r\n")
        self.transport.write(head.encode("latin-1") + reply.body)  # type: ignore[union-attr]
        if not keep_alive:
            self.transport.close()  # type: ignore[union-attr]
            self.closed = True

    def _refuse(self, status: int, error: str) -> None:
        self.head = None
        self.buf.clear()
        self._write(_json(status, {"error": error}), keep_alive=False)

    def _process(self) -> None:
        buf = self.buf
        while not self.closed and not self.busy:
            if self.head is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_REQUEST_HEAD:
                        self._refuse(431, "request head too large")
                    return
                if not self._parse_head(bytes(buf[:end])):
                    return
                del buf[:end + 4]
            method, path, headers, keep_alive = self.head  # type: ignore[misc]
            if self.length >= 0:
                if len(buf) < self.length:
                    return
                raw = bytes(buf[:self.length])
                del buf[:self.length]
            else:
                raw = self._dechunk()
                if raw is None:
                    return
            self.head = None
            channel = _SEND_CHANNEL.get(path)
            if channel is None or method != "POST":
                reply = (_json(405, {"error": f"{method} not allowed on {path}"}, (("Allow", "POST"),))
                         if channel is not None else _control(self.state, method, path, raw))
                self._write(reply, keep_alive)
                continue
            first = self.state.begin(channel, headers.get("authorization", ""), raw)
            if isinstance(first, _Reply):
                self._write(first, keep_alive)
                continue
            fields, delay = first
            if not delay:
                reply, job = self.state.decide(channel, fields)
                if job is None:
                    self._write(reply, keep_alive)
                    continue
                self.busy = True
                asyncio.ensure_future(self._finish(reply, job, keep_alive))
                return
            self.busy = True
            asyncio.ensure_future(self._later(channel, fields, delay, keep_alive))
            return

    async def _later(self, channel: str, fields: dict[str, str], delay: float, keep_alive: bool) -> None:
        await asyncio.sleep(delay)
        reply, job = self.state.decide(channel, fields)
        await self._finish(reply, job, keep_alive)

    async def _finish(self, reply: _Reply, job: tuple | None, keep_alive: bool) -> None:
        try:
            if job is not None:
                await self.state.send_receipts(*job)
        except Exception:  # the message was delivered: answer it whatever became of its receipts
            log.exception("provider-sim: could not queue the receipts of %s", reply)
        finally:
            self.busy = False
        self._write(reply, keep_alive)
        if not self.closed:
            self._process()

    def _parse_head(self, head: bytes) -> bool:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            self._refuse(400, "malformed request line")
            return False
        if not version.startswith("HTTP/1."):
            self._refuse(400, f"unsupported protocol {version[:20]}")
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._refuse(400, "malformed header line")
                return False
            headers[name.strip().lower()] = value.strip()
        conn = headers.get("connection", "").lower()
        keep_alive = "close" not in conn and (version == "HTTP/1.1" or "keep-alive" in conn)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.length = -1
            self._chunked = bytearray()
        else:
            try:
                self.length = int(headers.get("content-length", "0"))
            except ValueError:
                self._refuse(400, "bad Content-Length")
                return False
            if self.length < 0:
                self._refuse(400, "bad Content-Length")
                return False
            if self.length > MAX_REQUEST_BODY:
                self._refuse(413, f"body larger than {MAX_REQUEST_BODY} bytes")
                return False
        if headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        self.head = (method, target.split("?", 1)[0], headers, keep_alive)
        return True

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once it has arrived (consumed from the buffer), else None."""
        buf = self.buf
        pos, out = 0, bytearray()
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            try:
                size = int(bytes(buf[pos:end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._refuse(400, "bad chunk size")
                return None
            if len(out) + size > MAX_REQUEST_BODY:
                self._refuse(413, f"body larger than {MAX_REQUEST_BODY} bytes")
                return None
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", end)
                if buf[end:end + 4] == b"\r\n\r\n":
                    trailer_end = end
                if trailer_end < 0:
                    return None
                del buf[:trailer_end + 4]
                return bytes(out)
            if len(buf) < end + 2 + size + 2:
                return None
            out += buf[end + 2:end + 2 + size]
            pos = end + 2 + size + 2


class SimServer:
    """The simulator served on loopback from a background thread (its own asyncio loop and
    :class:`_SimProtocol`); a context manager (stopping drops pending receipts).

    ``SimServer(port=0, error_rate=0.1)`` starts nothing until :meth:`start` (or ``with``);
    keyword arguments override fields of ``config``.
    """

    label = "provider-sim"

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                 **settings: Any) -> None:
        config = config or SimConfig()
        config = dataclasses.replace(config, **settings) if settings else config
        self.state = _SimState(config)
        self.host, self.port, self.backlog = host, port, 2048
        self._conns: set[_SimProtocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` (the port the OS picked, once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    def start(self, timeout: float = 10.0) -> SimServer:
        if self._thread is not None:
            return self
        from panhuo.delivery._serve import bind_tcp

        sock = bind_tcp(self.host, self.port, self.label)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._stop = asyncio.Event()
            await self.state.start()
            server = await loop.create_server(lambda: _SimProtocol(self), sock=sock, backlog=self.backlog)
            ready.set()
            try:
                await self._stop.wait()
            finally:
                server.close()
                for conn in list(self._conns):
                    if conn.transport is not None:
                        conn.transport.close()
                await self.state.close()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{self.label}:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._error is not None or not self._thread.is_alive():
            self.stop()
            raise ConfigError(f"{self.label} did not start on {self.url}: {self._error or 'timed out'}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (close the listener and every connection) and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = self._loop = self._stop = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def config(self) -> SimConfig:
        """The settings in force (changed by :meth:`configure` and ``POST /config``)."""
        return self.state.config

    def stats(self) -> dict[str, Any]:
        """The counters, as ``GET /stats`` returns them."""
        return self.state.stats()

    def configure(self, **faults: Any) -> SimConfig:
        """Change settings while running (any :class:`SimConfig` field); returns the new configuration."""
        return self.state.configure(**faults)

    def reset(self) -> None:
        """Clear counters and keys, as ``POST /reset``."""
        self.state.reset()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued (and late) receipt has been sent or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.state.pending > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
