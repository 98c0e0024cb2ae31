"""Request counts and latency percentiles per endpoint, and a request-body size limit (ASGI)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque

import numpy as np

WINDOW = 4096  # latencies kept per endpoint for the percentiles
# Every label is drawn from a fixed set, so no request can create a new series: methods outside
# METHODS are "OTHER", paths that match no route are "unmatched", statuses outside 100-599 are 0.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Counts by endpoint and status, and the latencies of the last ``WINDOW`` requests each."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._counts: dict[str, dict[int, int]] = {}
        self._lat: dict[str, deque] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            by_status = self._counts.setdefault(endpoint, {})
            by_status[status] = by_status.get(status, 0) + 1
            self._lat.setdefault(endpoint, deque(maxlen=WINDOW)).append(seconds)

    def snapshot(self) -> dict:
        with self._lock:
            counts = {k: dict(v) for k, v in self._counts.items()}
            lats = {k: np.fromiter(v, dtype=np.float64) for k, v in self._lat.items()}
        out = {}
        for ep in sorted(counts):
            c, lat = counts[ep], lats[ep] * 1000.0
            p50, p90, p99 = (np.percentile(lat, [50, 90, 99]) if len(lat) else (0.0, 0.0, 0.0))
            out[ep] = {
                "count": sum(c.values()),
                "by_status": {str(s): n for s, n in sorted(c.items())},
                "errors_4xx": sum(n for s, n in c.items() if 400 <= s < 500),
                "errors_5xx": sum(n for s, n in c.items() if s >= 500),
                "latency_ms": {"window": int(len(lat)), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
                               "p99": round(float(p99), 3), "max": round(float(lat.max()) if len(lat) else 0.0, 3)},
            }
        return {"uptime_seconds": round(time.time() - self.started, 1),
                "requests": sum(v["count"] for v in out.values()), "endpoints": out}


class MetricsMiddleware:
    """Times every HTTP request and files it under ``METHOD /route/{template}``."""

    def __init__(self, app, metrics: Metrics) -> None:  # noqa: ANN001 - ASGI app
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(msg) -> None:  # noqa: ANN001
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(label(scope), status[0] if 100 <= status[0] <= 599 else 0, time.perf_counter() - t0)


def label(scope: dict) -> str:
    """``METHOD /route/{template}`` for a request, from a bounded set of labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    method = scope.get("method", "")
    return f"{method if method in METHODS else 'OTHER'} {path.replace(':path}', '}')}"


class BodyLimitMiddleware:
    """Rejects request bodies over ``max_bytes`` with 413, whether or not Content-Length is sent."""

    def __init__(self, app, max_bytes: int) -> None:  # noqa: ANN001
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > self.max_bytes:
                        await self._reject(send)
                        return
                except ValueError:
                    await self._reject(send, 400, "bad Content-Length header")
                    return
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body, sent = b"".join(chunks), [False]

        async def replay():  # noqa: ANN202
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send, status: int = 413, detail: str | None = None) -> None:  # noqa: ANN001
        body = json.dumps({"detail": detail or f"request body larger than {self.max_bytes} bytes", "errors": []}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
