"""In-process rate limits per magic key (or client IP without one); chat and feedback counted separately.

A fixed window per identity, opened by its first request: simple, exact headers, bounded memory.
State lives in one process; several workers each keep their own counts (documented in the README).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Callable

from services.settings import Settings

MAX_TRACKED = 10_000  # identities kept before expired windows are swept
_LIMITED_PATHS = {"/api/chat": "chat", "/v1/chat/completions": "chat", "/api/feedback": "feedback"}
RATE_LIMIT_HEADERS = ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # whole seconds until the window resets

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset_after)}
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers


class FixedWindowLimiter:
    """At most `limit` requests per `window_seconds` per identity; `limit` 0 disables it."""

    def __init__(self, *, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = max(float(window_seconds), 1.0)
        self.clock = clock
        self._windows: dict[str, list[float]] = {}  # identity -> [window start, count]

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, identity: str) -> Decision:
        now = self.clock()
        entry = self._windows.get(identity)
        if entry is None or now - entry[0] >= self.window:
            if len(self._windows) >= MAX_TRACKED:
                self._sweep(now)
            entry = self._windows[identity] = [now, 0]
        reset_after = max(1, math.ceil(entry[0] + self.window - now))
        if entry[1] >= self.limit:
            return Decision(False, self.limit, 0, reset_after)
        entry[1] += 1
        return Decision(True, self.limit, self.limit - int(entry[1]), reset_after)

    def _sweep(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        if len(self._windows) >= MAX_TRACKED:  # all live: forget the oldest half rather than grow
            keep = sorted(self._windows.items(), key=lambda item: item[1][0])[MAX_TRACKED // 2:]
            self._windows = dict(keep)


def identity(*, magic_key: str | None, client_ip: str | None) -> str:
    """The magic key (hashed: counts need no secrets) or, without one, the client address."""
    if magic_key and magic_key.strip():
        return "key:" + hashlib.sha256(magic_key.strip().encode()).hexdigest()[:24]
    return "ip:" + (client_ip or "unknown")


def magic_key_from(body: bytes, header_value: str | None) -> str | None:
    if header_value:
        return header_value
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
    key = data.get("magic_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


class RateLimitMiddleware:
    """Pure ASGI middleware: limits chat (/api/chat, /v1/chat/completions) and feedback; adds X-RateLimit-* headers.

    It reads the body to find the magic key, then replays it to the app unchanged.
    """

    def __init__(self, app, *, settings: Settings) -> None:
        self.app = app
        window = settings.rate_limit_window_seconds
        self.limiters = {"chat": FixedWindowLimiter(limit=settings.rate_limit_chat, window_seconds=window),
                         "feedback": FixedWindowLimiter(limit=settings.rate_limit_feedback, window_seconds=window)}

    async def __call__(self, scope, receive, send) -> None:
        name = _LIMITED_PATHS.get(scope.get("path", "").rstrip("/")) if scope["type"] == "http" else None
        limiter = self.limiters.get(name) if name and scope.get("method") == "POST" else None
        if limiter is None or not limiter.enabled:
            await self.app(scope, receive, send)
            return
        body, disconnected = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        bearer = headers.get("authorization", "")
        bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
        who = identity(magic_key=magic_key_from(body, headers.get("x-magic-key") or bearer),
                       client_ip=client[0] if client else None)
        decision = limiter.hit(who)
        if not decision.allowed:
            scope["route_path"] = scope["path"].rstrip("/")  # for the request metrics: never routed
            _count_refusal(scope, name)
            await _send_429(send, decision)
            return

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            if disconnected:
                return {"type": "http.disconnect"}
            return await receive()

        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, replay, send_with_headers)


async def _read_body(receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _count_refusal(scope, name: str) -> None:
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    metrics = getattr(services, "metrics", None)
    if metrics is not None:
        metrics.rate_limited.labels(limit=name).inc()


async def _send_429(send, decision: Decision) -> None:
    body = json.dumps({"detail": f"Too many requests. Please try again in {decision.reset_after} seconds."}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
