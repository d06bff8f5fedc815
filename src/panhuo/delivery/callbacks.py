"""The callback endpoint: providers' delivery receipts and SMS replies, signed, idempotent (FastAPI).

:func:`create_callback_app` builds the app; ``panhuo callbacks serve`` runs it (uvicorn) and
:class:`CallbackServer` runs it in a background thread (tests, demos). One route takes both kinds:

``POST /callbacks/receipts`` (``/callbacks/replies`` is the same handler, for providers that want a
separate URL) with header ``X-Panhuo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
f"{t}." + raw body)>`` and a JSON body, either a receipt ``{"provider_id", "message_id", "channel",
"event": "delivered|failed|opened|clicked", "at"}`` or a reply ``{"event": "reply", "channel": "sms",
"phone", "text", "at"}``.

Answers: ``200 {"ok": true, "duplicate", "receipt_status" | "opted_out"}`` (a duplicate or late
receipt answers 200 and changes nothing, see :mod:`panhuo.delivery.events`); refusals change nothing
and are logged (warning, with the reason; a phone only masked): ``413`` body larger than
``max_body`` (checked on ``Content-Length`` and while reading), ``401`` signature missing, malformed,
wrong (constant-time compare) or older/newer than ``max_age_seconds``, ``400`` body not a JSON object
or a field missing/unknown, ``404`` unknown message (neither the provider id nor the message id names
an outbox row) or a reply from a phone no customer in the warehouse has. A reply whose text, stripped
and case-folded, is one of ``stop_words`` (default T, TD, 退订) records an SMS opt-out of the
customer(s) owning the phone before the answer, so the next run's consent guardrail blocks SMS.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from panhuo.content.masking import mask_phone
from panhuo.delivery.channels import SIGNATURE_HEADER, parse_signature
from panhuo.delivery.events import RECEIPT_EVENTS, STOP_WORDS, Outcome, PhoneBook, record_receipt, record_reply
from panhuo.delivery._serve import LoopbackServer
from panhuo.errors import ConfigError
from panhuo.store.db import Store, open_store

if TYPE_CHECKING:
    from panhuo.config import Workspace

__all__ = ["PATHS", "CallbackServer", "create_callback_app"]

log = logging.getLogger(__name__)

PATHS: tuple[str, ...] = ("/callbacks/receipts", "/callbacks/replies")


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _validate(data: Any) -> str:
    """The reason ``data`` is not a receipt or a reply ('' when it is one)."""
    if not isinstance(data, dict):
        return "body is not a JSON object"
    ev = data.get("event")
    if ev == "reply":
        if not isinstance(data.get("phone"), str) or not data["phone"]:
            return "reply without a phone"
        if not isinstance(data.get("text"), str):
            return "reply without a text"
        return ""
    if ev not in RECEIPT_EVENTS:
        return f"unknown event {ev!r}"
    pid, mid = data.get("provider_id"), data.get("message_id")
    if not (isinstance(pid, str) and pid) and not (isinstance(mid, (str, int)) and str(mid)):
        return "receipt without a provider id or message id"
    if pid is not None and not isinstance(pid, str):
        return "provider_id is not text"
    return ""


def create_callback_app(target: Workspace | Store, secret: str | bytes, *, max_age_seconds: int = 300,
                        max_body: int = 64 * 1024, stop_words: Iterable[str] = STOP_WORDS,
                        warehouse_dir: Path | None = None) -> FastAPI:
    """The callback app over a workspace's store (or a :class:`Store`; replies then need ``warehouse_dir``).

    Phones of replies are looked up in the warehouse ``customers`` table (``warehouse_dir``, default
    the workspace's), re-read when a new load is in force. ``app.state.stats`` counts answers by code.
    """
    if not secret:
        raise ConfigError("callbacks: the HMAC secret is empty")
    if isinstance(target, Store):
        store = target
    else:
        store = open_store(target)  # disposed by the caller: app.state.store
        warehouse_dir = warehouse_dir or target.warehouse_dir
    words = tuple(stop_words)
    phones = PhoneBook(warehouse_dir)
    phones_lock = threading.Lock()
    stats: dict[str, int] = {}
    stats_lock = threading.Lock()

    app = FastAPI(title="panhuo callbacks", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.stats = stats

    def answer(request: Request, outcome: Outcome, what: str = "") -> JSONResponse:
        with stats_lock:
            stats[str(outcome.status)] = stats.get(str(outcome.status), 0) + 1
        if outcome.status >= 400:
            peer = request.client.host if request.client else "?"
            log.warning("callback refused %s from %s: %s%s", outcome.status, peer, outcome.reason,
                        f" ({what})" if what else "")
        return JSONResponse(outcome.body(), status_code=outcome.status)

    def handle(data: dict[str, Any]) -> Outcome:
        if data["event"] == "reply":
            with phones_lock:
                customers = phones.customers(data["phone"])
            with store.session() as s:
                out = record_reply(s, data, customers, words)
            if out.opted_out and not out.duplicate:
                log.info("SMS opt-out from %s: customers %s", mask_phone(data["phone"]), ", ".join(out.opted_out))
            return out
        with store.session() as s:
            return record_receipt(s, data)

    async def receive(request: Request) -> JSONResponse:
        try:
            raw = await _read_body(request, max_body)
        except _TooLarge:
            return answer(request, Outcome(413, f"body larger than {max_body} bytes"))
        header = request.headers.get(SIGNATURE_HEADER)
        try:
            parse_signature(header, secret, raw, tolerance=max_age_seconds)
        except (ValueError, TypeError) as exc:  # TypeError: a non-ASCII signature
            return answer(request, Outcome(401, f"signature refused: {exc}"))
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return answer(request, Outcome(400, "body is not JSON"))
        reason = _validate(data)
        if reason:
            return answer(request, Outcome(400, reason))
        outcome = await run_in_threadpool(handle, data)
        what = (f"reply from {mask_phone(data.get('phone'))}" if data["event"] == "reply"
                else f"{data['event']} {data.get('provider_id')}")
        return answer(request, outcome, what)

    for path in PATHS:
        app.add_api_route(path, receive, methods=["POST"], include_in_schema=False)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    return app


class CallbackServer(LoopbackServer):
    """The callback app served by uvicorn in a background thread on loopback; a context manager."""

    label = "callbacks"

    def __init__(self, target: Workspace | Store, secret: str, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> None:
        super().__init__(create_callback_app(target, secret, **options), host, port)
        self._owned_store = not isinstance(target, Store)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/callbacks/receipts`` once started."""
        return f"{self.base_url}{PATHS[0]}"

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._owned_store:
            self.app.state.store.dispose()
