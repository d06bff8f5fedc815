"""Channel adapters: one small interface, one adapter per way a message leaves panhuo.

A :class:`Channel` has a ``name`` and ``async send(client, message) -> SendResult``: the provider's id
(``SendResult.ok``), a transient error (``retry_after`` when the provider said how long to wait) or a
permanent one (``reason``). ``parse_receipt(headers, body, secret)`` checks a provider receipt's
signature and reads it (the callback endpoint that calls it comes in a later slice).

Adapters that speak the provider contract (one :class:`panhuo.delivery.http.HttpClient` per provider,
a pool of keep-alive connections made by the worker, with the bearer token):

- :class:`AppPushChannel`  ``POST /push/send``   ``{message_id, idempotency_key, customer_id, title, body}``
- :class:`SmsChannel`      ``POST /sms/send``    ``{message_id, idempotency_key, phone, text}``; the text
  already carries 【signature】 and 回T退订; phones are looked up for a whole batch at once
  (:func:`lookup_customers`) and only ever logged masked (:func:`panhuo.content.masking.mask_phone`);
- :class:`WechatChannel`   ``POST /wechat/send`` ``{message_id, idempotency_key, openid, template_id, data}``;
  the openid comes from :func:`openid_for` (``delivery.wechat.openid_from: customer_id``: the contract
  has no openid column, so the customer id stands in — the one place to change when one arrives);
- :class:`WebhookChannel`  the brokerage's own message centre: ``POST base_url`` with the message, the
  playbook's segment and the chosen tags (``delivery.webhook_tags``), signed like the contract's
  receipts (``X-Panhuo-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>``).

Call channel messages are not sent: the worker turns them into call tasks for the customer's advisor
(:mod:`panhuo.delivery.worker`). Response classification (:func:`classify`): 200 with a JSON
``provider_id`` is sent; 429 (``Retry-After`` seconds), 5xx, a timeout, a network error or a 200 whose
body is not the expected JSON are transient; any other 4xx is permanent with the provider's ``error``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from panhuo.content.masking import mask_phone
from panhuo.delivery.http import HttpClient, HttpTimeout, HttpTransportError

__all__ = [
    "AppPushChannel",
    "Channel",
    "Message",
    "Receipt",
    "SendResult",
    "SmsChannel",
    "WebhookChannel",
    "WechatChannel",
    "classify",
    "lookup_customers",
    "openid_for",
    "parse_signature",
    "sign",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Panhuo-Signature"


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to: ``sent`` (provider id), ``transient`` (retry; maybe after N s) or ``permanent``."""

    outcome: Literal["sent", "transient", "permanent"]
    provider_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"

    @classmethod
    def sent(cls, provider_id: str, duplicate: bool = False) -> SendResult:
        return cls("sent", provider_id=provider_id, duplicate=duplicate)

    @classmethod
    def transient(cls, reason: str, retry_after: float | None = None) -> SendResult:
        return cls("transient", reason=reason, retry_after=retry_after)

    @classmethod
    def permanent(cls, reason: str) -> SendResult:
        return cls("permanent", reason=reason)


@dataclass
class Message:
    """One outbox row on its way out; ``content`` parsed; ``extra`` holds what a batch lookup found."""

    id: int
    run_id: int
    playbook_id: str
    customer_id: str
    channel: str
    content: dict[str, Any]
    idempotency_key: str
    attempts: int = 0
    arm: str | None = None
    benefit_id: str | None = None
    content_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt from a provider (read by the callback endpoint, a later slice)."""

    provider_id: str
    status: str
    message_id: str | None
    at: int
    raw: dict[str, Any]


def sign(secret: str | bytes, body: bytes, t: int | None = None) -> str:
    """The ``X-Panhuo-Signature`` value of ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t." + body)>``."""
    t = int(time.time()) if t is None else t
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_signature(header: str | None, secret: str | bytes, body: bytes, *, tolerance: int = 300,
                    now: float | None = None) -> int:
    """Check a signature header against ``body``; returns its time. ValueError when wrong, stale or missing."""
    if not header:
        raise ValueError(f"no {SIGNATURE_HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"malformed {SIGNATURE_HEADER}: {header!r}") from exc
    now = time.time() if now is None else now
    if abs(now - t) > tolerance:
        raise ValueError(f"signature time {t} is more than {tolerance}s away from now")
    expected = sign(secret, body, t).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise ValueError("signature does not match the body")
    return t


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()


async def _post(client: HttpClient, target: str, body: bytes, headers: Mapping[str, str] | None = None) -> SendResult:
    try:
        response = await client.post(target, body, headers)
    except HttpTimeout:
        return SendResult.transient("timeout")
    except HttpTransportError as exc:
        return SendResult.transient(f"network error ({exc})"[:300])
    return classify(response)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: the contract says seconds; treat as unknown
        return None


def classify(response: Any) -> SendResult:
    """A provider response as a :class:`SendResult` (see the module docstring).

    ``response``: a :class:`panhuo.delivery.http.Response` (or anything shaped like it: ``status_code``,
    ``headers``, ``json()``, ``text``, ``reason_phrase``, ``url``, e.g. an ``httpx.Response``).
    """
    code = response.status_code
    if code == 429:
        return SendResult.transient("429 rate limited", _retry_after(response))
    if code >= 500:
        return SendResult.transient(f"{code} provider error", _retry_after(response))
    if 400 <= code < 500:
        try:
            reason = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            reason = ""
        return SendResult.permanent(f"{code} {reason or response.reason_phrase}".strip())
    if 200 <= code < 300:
        try:
            data = response.json()
            pid = data["provider_id"]
            if not isinstance(pid, str) or not pid:
                raise KeyError("provider_id")
        except (ValueError, KeyError, TypeError):
            log.warning("malformed %s response from %s: %r", code, response.url, response.text[:200])
            return SendResult.transient(f"{code} malformed response")
        return SendResult.sent(pid, duplicate=bool(data.get("duplicate", False)))
    if 300 <= code < 400:  # a redirect means a wrong URL in the settings: retrying will not help
        return SendResult.permanent(f"{code} redirect to {response.headers.get('Location', '?')}")
    return SendResult.transient(f"{code} unexpected status")


class Channel:
    """The interface of an adapter: ``name``, ``async send(client, message)``, ``parse_receipt(...)``."""

    name: str = ""
    path: str = ""

    def payload(self, message: Message) -> dict[str, Any] | SendResult:
        """The request body of ``message`` (or a permanent SendResult when it cannot be sent)."""
        raise NotImplementedError

    def recipient(self, message: Message) -> str:
        """Who the message goes to, fit for the archive and logs (never an unmasked phone)."""
        return message.customer_id

    async def send(self, client: HttpClient, message: Message) -> SendResult:
        """One attempt. Timeouts and network errors come back as transient results, never raised."""
        body = self.payload(message)
        if isinstance(body, SendResult):
            return body
        return await _post(client, self.path, _body(body))

    def parse_receipt(self, headers: Mapping[str, str], body: bytes, secret: str | bytes) -> Receipt:
        """A provider receipt, its signature checked (ValueError when wrong). Used by the callback slice."""
        at = parse_signature(headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()), secret, body)
        data = json.loads(body)
        return Receipt(provider_id=str(data["provider_id"]), status=str(data.get("status", "")),
                       message_id=data.get("message_id"), at=at, raw=data)


class AppPushChannel(Channel):
    name = "app_push"
    path = "/push/send"

    def payload(self, message: Message) -> dict[str, Any] | SendResult:
        c = message.content
        if not c.get("title") and not c.get("body"):
            return SendResult.permanent("empty push content")
        return {"message_id": message.message_id, "idempotency_key": message.idempotency_key,
                "customer_id": message.customer_id, "title": str(c.get("title", "")), "body": str(c.get("body", ""))}


class SmsChannel(Channel):
    """SMS: the phone comes from the batch lookup (``message.extra['phone']``); logged and archived masked."""

    name = "sms"
    path = "/sms/send"

    def payload(self, message: Message) -> dict[str, Any] | SendResult:
        phone = message.extra.get("phone")
        if not phone:
            return SendResult.permanent("no phone number for the customer")
        text = message.content.get("text")
        if not text:
            return SendResult.permanent("empty SMS text")
        return {"message_id": message.message_id, "idempotency_key": message.idempotency_key,
                "phone": str(phone), "text": str(text)}

    def recipient(self, message: Message) -> str:
        return mask_phone(message.extra.get("phone"))


def openid_for(customer_id: str, openid_from: str = "customer_id") -> str:
    """The WeChat openid of a customer: the mapping hook (``delivery.wechat.openid_from``).

    The data contract has no openid column, so ``customer_id`` (the only choice today) stands in for
    it; a brokerage whose export gains an openid adds its source here and in the settings.
    """
    if openid_from == "customer_id":
        return customer_id
    raise ValueError(f"unknown openid source {openid_from!r}")


class WechatChannel(Channel):
    name = "wechat"
    path = "/wechat/send"

    def __init__(self, openid_from: str = "customer_id") -> None:
        self.openid_from = openid_from

    def payload(self, message: Message) -> dict[str, Any] | SendResult:
        c = message.content
        if not c.get("template_id"):
            return SendResult.permanent("no WeChat template id")
        data = {str(k): str(v) for k, v in (c.get("data") or {}).items()}
        return {"message_id": message.message_id, "idempotency_key": message.idempotency_key,
                "openid": openid_for(message.customer_id, self.openid_from), "template_id": str(c["template_id"]),
                "data": data}

    def recipient(self, message: Message) -> str:
        return openid_for(message.customer_id, self.openid_from)


class WebhookChannel(Channel):
    """The brokerage's message centre: every message, its segment and chosen tags, HMAC-signed.

    Body: ``{message_id, idempotency_key, channel, customer_id, playbook_id, arm, benefit_id, content,
    segment, tags}``; headers ``X-Panhuo-Signature`` (see :func:`sign`) and ``Idempotency-Key``. The
    answer is read like the contract's (``200 {"provider_id": ...}``).
    """

    path = ""

    def __init__(self, channel: str, secret: str, url: str) -> None:
        self.name = channel
        self._secret = secret.encode()
        self.url = url  # absolute: the message centre's own path, no trailing slash added

    def payload(self, message: Message) -> dict[str, Any] | SendResult:
        return {"message_id": message.message_id, "idempotency_key": message.idempotency_key,
                "channel": message.channel, "customer_id": message.customer_id, "playbook_id": message.playbook_id,
                "arm": message.arm, "benefit_id": message.benefit_id, "content": message.content,
                "segment": message.extra.get("segment"), "tags": message.extra.get("tags", {})}

    async def send(self, client: HttpClient, message: Message) -> SendResult:
        body = _body(self.payload(message))
        headers = {SIGNATURE_HEADER: sign(self._secret, body), "Idempotency-Key": message.idempotency_key}
        return await _post(client, self.url, body, headers)


def lookup_customers(warehouse_dir: Path, customer_ids: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``columns`` of the warehouse ``customers`` rows of ``customer_ids``: one filtered Parquet scan.

    Returns customer id -> {column: value as text or None}; a customer (or column) the load in force
    lacks is absent (or None). Empty when nothing is loaded yet.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from panhuo.errors import WarehouseError
    from panhuo.warehouse import Warehouse

    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    try:
        wh = Warehouse(warehouse_dir)
        if wh.current_id is None or not wh.has_table("customers"):
            return {}
        path = wh.table_path("customers")
    except WarehouseError:
        return {}
    data = ds.dataset(str(path), format="parquet")
    have = [c for c in columns if c in data.schema.names]
    key = pc.field("customer_id").cast(pa.string())
    table = data.to_table(columns={"customer_id": key, **{c: pc.field(c).cast(pa.string()) for c in have}},
                          filter=key.isin(pa.array(ids, pa.string())))
    out: dict[str, dict[str, Any]] = {}
    cols = {c: table.column(c).to_pylist() for c in have}
    for i, cid in enumerate(table.column("customer_id").to_pylist()):
        out[cid] = {c: cols[c][i] for c in columns if c in cols} | {c: None for c in columns if c not in cols}
    return out
