"""Rate limits per authenticated identity (validated magic key, else client IP); chat and feedback apart.

Telemetry and failed magic-key checks are limited per client IP only: an unknown key is never an
identity of its own, or guessing keys would buy a fresh allowance per guess.

A fixed window per identity, opened by its first request: simple, exact headers, bounded memory.
State lives in one process, unless `shared` counters are given (SHARED_STATE=mongo, the default with
MONGODB_URI): then the windows are counted in the database and several workers share one allowance
(services/core/shared_limits.py). Routers use the async `hit`/`check_spent`, which take either path.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from services.core.errors import RateLimited

if TYPE_CHECKING:
    from services.core.shared_limits import SharedCounters

MAX_TRACKED = 10_000  # identities kept before expired windows are swept
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

    def spent(self, identity: str) -> Decision | None:
        """The refusal `identity` would get now, without counting a request; None while it has allowance."""
        entry = self._windows.get(identity)
        now = self.clock()
        if entry is None or now - entry[0] >= self.window or entry[1] < self.limit:
            return None
        return Decision(False, self.limit, 0, max(1, math.ceil(entry[0] + self.window - now)))

    def _sweep(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        if len(self._windows) >= MAX_TRACKED:  # all live: forget the oldest half rather than grow
            keep = sorted(self._windows.items(), key=lambda item: item[1][0])[MAX_TRACKED // 2:]
            self._windows = dict(keep)


def identity(*, magic_key: str | None, client_ip: str | None) -> str:
    """The validated magic key (hashed: counts need no secrets) or, without one, the client address."""
    if magic_key and magic_key.strip():
        return "key:" + hashlib.sha256(magic_key.strip().encode()).hexdigest()[:24]
    return "ip:" + (client_ip or "unknown")


class RateLimits:
    """The app's limiters by name ("chat", "feedback", "telemetry", "key_failures"); `admit` raises
    `RateLimited` when spent."""

    def __init__(self, *, chat: int, feedback: int, window_seconds: float, telemetry: int = 0, key_failures: int = 0,
                 clock: Callable[[], float] = time.monotonic, on_refusal: Callable[[str], None] | None = None,
                 shared: "SharedCounters | None" = None) -> None:
        limits = {"chat": chat, "feedback": feedback, "telemetry": telemetry, "key_failures": key_failures}
        self.limiters = {name: FixedWindowLimiter(limit=limit, window_seconds=window_seconds, clock=clock)
                         for name, limit in limits.items()}
        self.on_refusal = on_refusal
        self.shared = shared

    async def hit(self, name: str, *, magic_key: str | None, client_ip: str | None) -> dict[str, str]:
        """`admit`, counted in the shared counters when there are some (every worker sees the same count)."""
        limiter = self.limiters[name]
        if self.shared is None or not limiter.enabled:
            return self.admit(name, magic_key=magic_key, client_ip=client_ip)
        decision = await self.shared.hit(name, identity(magic_key=magic_key, client_ip=client_ip),
                                         limit=limiter.limit, window=limiter.window)
        if not decision.allowed:
            self._refuse(name, decision)
        return decision.headers()

    async def check_spent(self, name: str, *, client_ip: str | None) -> None:
        """`refuse_if_spent`, against the shared counters when there are some."""
        limiter = self.limiters[name]
        if self.shared is None or not limiter.enabled:
            self.refuse_if_spent(name, client_ip=client_ip)
            return
        decision = await self.shared.spent(name, identity(magic_key=None, client_ip=client_ip),
                                           limit=limiter.limit, window=limiter.window)
        if decision is not None:
            self._refuse(name, decision)

    def admit(self, name: str, *, magic_key: str | None, client_ip: str | None) -> dict[str, str]:
        """Count one request of `name`; returns the X-RateLimit-* headers (empty when that limit is off)."""
        limiter = self.limiters[name]
        if not limiter.enabled:
            return {}
        decision = limiter.hit(identity(magic_key=magic_key, client_ip=client_ip))
        if not decision.allowed:
            self._refuse(name, decision)
        return decision.headers()

    def refuse_if_spent(self, name: str, *, client_ip: str | None) -> None:
        """Raise `RateLimited` if `name`'s allowance for this client address is already spent (counts nothing)."""
        limiter = self.limiters[name]
        decision = limiter.spent(identity(magic_key=None, client_ip=client_ip)) if limiter.enabled else None
        if decision is not None:
            self._refuse(name, decision)

    def _refuse(self, name: str, decision: Decision) -> None:
        if self.on_refusal:
            self.on_refusal(name)
        raise RateLimited(f"Too many requests. Please try again in {decision.reset_after} seconds.",
                          retry_after=decision.reset_after, headers=decision.headers())
