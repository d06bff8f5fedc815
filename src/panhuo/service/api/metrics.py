"""Prometheus metrics of ``panhuo serve`` (text exposition format 0.0.4) at ``/api/v1/metrics``.

- ``panhuo_http_requests_total{method, route, status}``: requests answered, by route template (``/api/v1/
  customers/{customer_id}``, never the raw path, so ids do not become labels) and status code;
- ``panhuo_http_request_duration_seconds{method, route}``: a latency histogram (buckets 5 ms .. 10 s);
- ``panhuo_outbox_rows{status}``: outbox rows by status (pending, sent, dead, ...), read at scrape time;
- ``panhuo_info{version}``.

The counters live in the process (one per ``panhuo serve`` worker). Reading them needs a reading role; a
Prometheus server scrapes with a ``read`` API key (``Authorization: Bearer phk_...``).
"""

import threading
import time
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from panhuo import __version__
from panhuo.service import views
from panhuo.service.deps import API, Reader, ReadDb

__all__ = ["BUCKETS", "Metrics", "MetricsMiddleware", "router"]

router = APIRouter(prefix=API, tags=["health"])

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Request counters and latency histograms, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.totals: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self.count[(method, route, status)] += 1
            b = self.buckets.setdefault(key, [0] * len(BUCKETS))
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    b[i] += 1
            self.sums[key] += seconds
            self.totals[key] += 1

    def render(self, outbox: dict[str, int]) -> str:
        lines = ["# HELP panhuo_info panhuo version", "# TYPE panhuo_info gauge",
                 f'panhuo_info{{version="{_label(__version__)}"}} 1',
                 "# HELP panhuo_http_requests_total HTTP requests answered, by route template and status",
                 "# TYPE panhuo_http_requests_total counter"]
        with self._lock:
            for (m, r, st), n in sorted(self.count.items()):
                lines.append(f'panhuo_http_requests_total{{method="{m}",route="{_label(r)}",status="{st}"}} {n}')
            lines += ["# HELP panhuo_http_request_duration_seconds HTTP request latency",
                      "# TYPE panhuo_http_request_duration_seconds histogram"]
            for (m, r), b in sorted(self.buckets.items()):
                lab = f'method="{m}",route="{_label(r)}"'
                for le, n in zip(BUCKETS, b, strict=True):
                    lines.append(f'panhuo_http_request_duration_seconds_bucket{{{lab},le="{le}"}} {n}')
                lines.append(f'panhuo_http_request_duration_seconds_bucket{{{lab},le="+Inf"}} {self.totals[(m, r)]}')
                lines.append(f"panhuo_http_request_duration_seconds_sum{{{lab}}} {self.sums[(m, r)]:.6f}")
                lines.append(f"panhuo_http_request_duration_seconds_count{{{lab}}} {self.totals[(m, r)]}")
        lines += ["# HELP panhuo_outbox_rows outbox rows by status", "# TYPE panhuo_outbox_rows gauge"]
        for st, n in sorted(outbox.items()):
            lines.append(f'panhuo_outbox_rows{{status="{_label(st)}"}} {n}')
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request into ``app.state.metrics`` by its route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.observe(scope.get("method", "?"), template, status[0], time.perf_counter() - start)


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, _who: Reader, s: ReadDb) -> PlainTextResponse:
    """Prometheus text format: request counts and latency by route and status, outbox rows by status."""
    m: Metrics = request.app.state.metrics
    return PlainTextResponse(m.render(views.outbox_counts(s)), media_type="text/plain; version=0.0.4; charset=utf-8")
