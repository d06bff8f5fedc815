"""The provider simulator: a real HTTP server on loopback that behaves like SMS, push and WeChat providers.

Used by the tests, the benchmarks and ``make demo`` (``panhuo provider-sim``); in-process through
:class:`SimServer` (uvicorn in a background thread on ``127.0.0.1``, an OS-picked port by default).

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
import math
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from panhuo.delivery._serve import LoopbackServer
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

    async def handle_send(self, channel: str, request: Request) -> Response:
        with self.lock:
            self.requests += 1
            req_no = self.requests
            cfg = self.config
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {cfg.token}".encode()):
            with self.lock:
                self.unauthorized += 1
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            raw = await request.body()
        except ClientDisconnect:  # the sender went away (killed) before its body arrived: nothing delivered
            with self.lock:
                self.cut_off += 1
            return Response(status_code=400)
        try:
            fields = _validate(channel, json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            reason = str(exc) if not isinstance(exc, json.JSONDecodeError) else "body is not JSON"
            with self.lock:
                self.invalid += 1
                self.faults["400"] += 1
            return JSONResponse({"error": reason}, status_code=400)
        key = fields["idempotency_key"]
        lo, hi = cfg.latency_ms
        if hi > 0:
            await asyncio.sleep((lo + (hi - lo) * _uniform(cfg.seed, "latency", channel, key, req_no)) / 1000)

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
                    failed = _uniform(cfg.seed, "failed", channel, key) < cfg.failed_receipt_rate
                    (self.undelivered if failed else self.delivered)[channel] += 1
                else:
                    self.attempts[(channel, key)] = self.attempts.get((channel, key), 0) + 1
                if fault is not None:
                    self.faults[fault] += 1

        provider_id = _provider_id(channel, key)
        if fault in ("400", "429", "5xx", "malformed"):
            return self._fault_response(fault, cfg, channel, key)
        if not duplicate and cfg.callback_url and cfg.secret:
            await self._receipts(cfg, channel, fields, provider_id, failed)
        if fault == "lost_response":
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        return JSONResponse({"provider_id": provider_id, "status": "accepted", "duplicate": duplicate})

    def _fault_response(self, fault: str, cfg: SimConfig, channel: str, key: str) -> Response:
        if fault == "400":
            return JSONResponse({"error": "rejected by the provider (simulated permanent failure)"},
                                status_code=400)
        if fault == "429":
            with self.lock:
                left = self.burst_until[channel] - time.monotonic()
            after = max(cfg.retry_after_s, math.ceil(left)) if left > 0 else cfg.retry_after_s
            return JSONResponse({"error": "too many requests"}, status_code=429,
                                headers={"Retry-After": str(after)})
        if fault == "5xx":
            status = 500 if _uniform(cfg.seed, "5xx", channel, key) < 0.5 else 503
            return JSONResponse({"error": "provider error (simulated)"}, status_code=status)
        return Response(b"<html><body>OK</body></html>", status_code=200, media_type="text/html")

    async def _receipts(self, cfg: SimConfig, channel: str, fields: dict[str, str], provider_id: str,
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


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; its state is ``app.state.sim``."""
    state = _SimState(config or SimConfig())

    def sender(channel: str):
        async def endpoint(request: Request) -> Response:
            return await state.handle_send(channel, request)
        return endpoint

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def config_endpoint(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(state.config.public())
        try:
            changes = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(changes, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        refused = sorted(set(changes) & _NOT_BY_HTTP)
        if refused:
            return JSONResponse({"error": f"{', '.join(refused)} cannot be set over HTTP"}, status_code=400)
        try:
            new = state.configure(**changes)
        except (ConfigError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(new.public())

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.close()

    routes = [Route(path, sender(ch), methods=["POST"]) for ch, path in _PATHS.items()]
    routes += [
        Route("/stats", stats, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/config", config_endpoint, methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = state
    return app


class SimServer(LoopbackServer):
    """The simulator served by uvicorn in a background thread; a context manager (stopping drops pending
    receipts).

    ``SimServer(port=0, error_rate=0.1)`` starts nothing until :meth:`start` (or ``with``);
    keyword arguments override fields of ``config``.
    """

    label = "provider-sim"

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                 **settings: Any) -> None:
        config = config or SimConfig()
        config = dataclasses.replace(config, **settings) if settings else config
        super().__init__(create_app(config), host, port, backlog=1024)

    @property
    def config(self) -> SimConfig:
        """The settings in force (changed by :meth:`configure` and ``POST /config``)."""
        return self.app.state.sim.config

    def stats(self) -> dict[str, Any]:
        """The counters, as ``GET /stats`` returns them."""
        return self.app.state.sim.stats()

    def configure(self, **faults: Any) -> SimConfig:
        """Change settings while running (any :class:`SimConfig` field); returns the new configuration."""
        return self.app.state.sim.configure(**faults)

    def reset(self) -> None:
        """Clear counters and keys, as ``POST /reset``."""
        self.app.state.sim.reset()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued (and late) receipt has been sent or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.app.state.sim.pending > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

