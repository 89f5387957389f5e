"""Rate-limit windows counted in the database, so several workers share one allowance (SHARED_STATE=mongo).

One document per (limit, identity, window) in `rate_limits`, counted with one atomic `$inc` upsert:
`{_id: "chat:key:…:1767225600", count, expires_at}`. Windows are aligned to the wall clock (every
worker agrees on where a window starts without talking to the others). MongoDB's TTL monitor
deletes a window's document after `expires_at`; the embedded engine has no TTL monitor, so expired
windows are swept here at most once per minute.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Callable

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.core.rate_limits import Decision

RATE_LIMITS = "rate_limits"
SWEEP_SECONDS = 60.0


class SharedCounters:
    """Fixed windows in the `rate_limits` collection; `hit` counts a request, `spent` only looks."""

    def __init__(self, *, database, wall_clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.clock = wall_clock
        self._swept_at = 0.0

    async def prepare(self) -> None:
        """The TTL index (idempotent): MongoDB deletes each window's counter once it has ended."""
        await self.database[RATE_LIMITS].create_index("expires_at", expireAfterSeconds=0)

    def _window(self, name: str, who: str, window: float) -> tuple[str, float, float]:
        now = self.clock()
        start = math.floor(now / window) * window
        return f"{name}:{who}:{int(start)}", now, start + window

    async def hit(self, name: str, who: str, *, limit: int, window: float) -> Decision:
        key, now, end = self._window(name, who, window)
        update = {"$inc": {"count": 1},
                  "$setOnInsert": {"expires_at": dt.datetime.fromtimestamp(end, dt.timezone.utc)}}
        collection = self.database[RATE_LIMITS]
        try:
            doc = await collection.find_one_and_update({"_id": key}, update, upsert=True,
                                                       return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # two workers created the window at once: the other insert won, count on it
            doc = await collection.find_one_and_update({"_id": key}, update, upsert=True,
                                                       return_document=ReturnDocument.AFTER)
        await self._sweep(now)
        reset_after = max(1, math.ceil(end - now))
        count = int(doc["count"])
        if count > limit:
            return Decision(False, limit, 0, reset_after)
        return Decision(True, limit, limit - count, reset_after)

    async def spent(self, name: str, who: str, *, limit: int, window: float) -> Decision | None:
        key, now, end = self._window(name, who, window)
        doc = await self.database[RATE_LIMITS].find_one({"_id": key})
        if doc is None or int(doc.get("count", 0)) < limit:
            return None
        return Decision(False, limit, 0, max(1, math.ceil(end - now)))

    async def _sweep(self, now: float) -> None:
        if not getattr(self.database, "embedded", False) or now - self._swept_at < SWEEP_SECONDS:
            return
        self._swept_at = now
        cutoff = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        await self.database[RATE_LIMITS].delete_many({"expires_at": {"$lt": cutoff}})
