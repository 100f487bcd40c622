"""What one caller may send: requests per minute (429 past them) and body bytes (413 past them: FastAPI counts)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from indexer.terminal import inert_json


@dataclass(frozen=True)
class Limits:
    """A server's limits; ``newsarchive serve`` takes them as options."""

    requests_per_minute: int = 600  # per key (or per address without keys): ten a second, bursts of a minute's
    max_body: int = 1 << 20  # bytes of a request's body: a question, a SQL query
    max_upload: int = 64 << 20  # bytes of a body of articles (POST /v1/articles)


class RateLimiter:
    """A token bucket per caller: ``per_minute`` tokens, refilled evenly; a request takes one."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 if ``caller`` may go on, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, then = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                return max(1.0, (1.0 - tokens) / rate)
            self._buckets[caller] = (tokens - 1.0, now)
            return 0.0


class JsonErrors:
    """ASGI middleware: an error the framework answers in plain text (FastAPI's 413 past a body limit, sent before
    any handler runs) is answered in JSON like every other, ``{"error": ...}``, with ``hints[status]`` if given."""

    def __init__(self, app: Any, hints: dict[int, str]) -> None:
        self.app, self.hints = app, hints

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict | None = None

        async def sending(message: dict) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                plain = dict(message.get("headers", [])).get(b"content-type", b"").startswith(b"text/plain")
                if message["status"] >= 400 and plain:
                    held = message  # its body comes next: rewrite both
                    return
            elif held is not None and message["type"] == "http.response.body":
                text = self.hints.get(held["status"]) or message.get("body", b"").decode("utf-8", "replace")
                body = inert_json({"error": text}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": held["status"], "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, sending)


class ServerTiming:
    """ASGI middleware: each response says how long the server took to start it, ``Server-Timing: app;dur=MS``,
    so that a client can tell the server's time from the network's and its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, timed)
