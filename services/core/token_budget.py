"""A daily token budget per identity (validated magic key, else client IP): `TOKEN_BUDGET_PER_KEY_DAILY`.

Checked before a turn starts, charged with the turn's usage when it ends (so one turn can overrun
the budget by its own size, never more). Counts live in one process and reset at 00:00 UTC; several
workers each keep their own (like the rate limits).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Callable

from services.core.errors import RateLimited

MAX_TRACKED = 10_000


class TokenBudgetSpent(RateLimited):
    code = "token_budget_exceeded"


def _utc_day_and_reset(now: float) -> tuple[str, int]:
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    midnight = (moment + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.date().isoformat(), max(1, math.ceil((midnight - moment).total_seconds()))


class TokenBudget:
    """Tokens spent today per identity; `limit` 0 turns the budget off (nothing is counted)."""

    def __init__(self, *, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = max(0, int(limit))
        self.clock = clock  # wall clock: the budget resets at UTC midnight
        self._day = ""
        self._spent: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _today(self) -> int:
        day, reset_after = _utc_day_and_reset(self.clock())
        if day != self._day:
            self._day, self._spent = day, {}
        return reset_after

    def spent(self, identity: str) -> int:
        self._today()
        return self._spent.get(identity, 0)

    def check(self, identity: str | None) -> None:
        """Raise `TokenBudgetSpent` (429 with Retry-After until midnight UTC) when `identity` has used its tokens."""
        if not self.enabled or identity is None:
            return
        reset_after = self._today()
        if self._spent.get(identity, 0) >= self.limit:
            raise TokenBudgetSpent(
                f"Today's token budget for this key ({self.limit} tokens) is used up. It resets at 00:00 UTC.",
                retry_after=reset_after)

    def charge(self, identity: str | None, tokens: int) -> None:
        if not self.enabled or identity is None or tokens <= 0:
            return
        self._today()
        if identity not in self._spent and len(self._spent) >= MAX_TRACKED:
            # bounded memory: forget the smallest spenders rather than grow without limit
            keep = sorted(self._spent.items(), key=lambda item: item[1])[MAX_TRACKED // 2:]
            self._spent = dict(keep)
        self._spent[identity] = self._spent.get(identity, 0) + int(tokens)
