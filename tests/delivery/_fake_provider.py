"""A loopback HTTP provider for the delivery tests: the provider contract with scripted, deterministic faults.

It speaks the contract of ``POST /sms/send``, ``/push/send``, ``/wechat/send`` (bearer token, the same
idempotency key always answers the same provider id and is delivered once) and ``GET /stats``, plus
``POST /hook`` (a brokerage message centre checking the ``X-Panhuo-Signature`` HMAC). Faults are
scripted per idempotency key: ``script[key] = [503, (429, 1.0), ...]`` answers those first, then
accepts; ``always[key] = (400, "reason")`` refuses every time; ``malformed[key] = n`` answers the
first ``n`` attempts with a 200 whose body is not JSON. ``delay`` holds every answer that many
seconds. Every request is logged as (path, key, monotonic time). Runs uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from panhuo.delivery._serve import LoopbackServer
from panhuo.delivery.channels import parse_signature

__all__ = ["FakeProvider"]

_CHANNEL = {"/sms/send": "sms", "/push/send": "app_push", "/wechat/send": "wechat", "/hook": "webhook"}
_FIELDS = {"sms": ("phone", "text"), "app_push": ("customer_id", "title", "body"),
           "wechat": ("openid", "template_id", "data")}


class FakeProvider:
    def __init__(self, token: str = "tok-123", secret: str = "hook-secret", delay: float = 0.0) -> None:
        self.token, self.secret, self.delay = token, secret, delay
        self.script: dict[str, list[Any]] = {}
        self.always: dict[str, tuple[int, str]] = {}
        self.malformed: dict[str, int] = {}
        self.lock = threading.Lock()
        self.provider_ids: dict[str, str] = {}
        self.delivered: Counter[str] = Counter()
        self.delivered_keys: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, float]] = []
        self.attempts: defaultdict[str, int] = defaultdict(int)
        self.duplicates = 0
        self.app = self._app()
        self._serve = LoopbackServer(self.app)
        self.url = ""

    # --------------------------------------------------------------------------- the app
    def _answer(self, path: str, body: dict[str, Any]) -> Response:
        channel = _CHANNEL[path]
        key = str(body.get("idempotency_key", ""))
        with self.lock:
            self.requests.append((path, key, time.monotonic()))
            self.attempts[key] += 1
            n = self.attempts[key]
            if key in self.always:
                code, reason = self.always[key]
                return JSONResponse({"error": reason}, status_code=code)
            todo = self.script.get(key) or []
            if todo:
                fault = todo.pop(0)
                code, retry = (fault, None) if isinstance(fault, int) else fault
                headers = {"Retry-After": str(retry)} if retry is not None else {}
                return JSONResponse({"error": f"fault {code}"}, status_code=code, headers=headers)
            if self.malformed.get(key, 0) >= n:
                return PlainTextResponse("<html>gateway says hi</html>", status_code=200)
            missing = [f for f in _FIELDS.get(channel, ()) if f not in body]
            if not key or missing:
                return JSONResponse({"error": f"missing {missing or 'idempotency_key'}"}, status_code=400)
            duplicate = key in self.provider_ids
            if duplicate:
                self.duplicates += 1
            else:
                self.provider_ids[key] = f"{channel}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
                self.delivered[channel] += 1
                self.bodies[key] = body
            self.delivered_keys[key] += 0 if duplicate else 1
            return JSONResponse({"provider_id": self.provider_ids[key], "status": "accepted", "duplicate": duplicate})

    def _app(self) -> FastAPI:
        app = FastAPI()
        fake = self

        async def send(request: Request) -> Response:
            raw = await request.body()
            if request.url.path == "/hook":
                try:
                    parse_signature(request.headers.get("X-Panhuo-Signature"), fake.secret, raw)
                except ValueError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=401)
            elif request.headers.get("Authorization") != f"Bearer {fake.token}":
                return JSONResponse({"error": "unauthorised"}, status_code=401)
            if fake.delay:
                await asyncio.sleep(fake.delay)
            return fake._answer(request.url.path, await request.json())

        for path in _CHANNEL:
            app.add_api_route(path, send, methods=["POST"])

        @app.get("/stats")
        def stats() -> dict[str, Any]:
            return fake.stats()

        return app

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"delivered": dict(self.delivered), "unique_keys": len(self.provider_ids),
                    "duplicates": self.duplicates, "requests": len(self.requests)}

    def times(self, key: str) -> list[float]:
        with self.lock:
            return [t for _, k, t in self.requests if k == key]

    # --------------------------------------------------------------------------- the server
    def start(self) -> FakeProvider:
        self._serve.label = "fake provider"
        self._serve.start()
        self.url = self._serve.base_url
        return self

    def stop(self) -> None:
        self._serve.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
