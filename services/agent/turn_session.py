"""The agent session as one turn sees it: reads the stored history, keeps this turn's items apart until
the turn succeeds, and keeps the stored history bounded.

A failed or cancelled turn leaves the stored session exactly as it was (nothing half-written for the
next turn to replay); a successful one appends its items, and when the store holds more than
`max_items` (+ a slack, so the rewrite is rare) it is rewritten to the newest `max_items`.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class TurnSession:
    """A `agents.memory.Session` over a stored session (e.g. `MongoDBSession`): writes wait for `commit()`."""

    session_settings = None

    def __init__(self, stored, *, max_items: int, empty: bool = False) -> None:
        """`empty`: the caller knows nothing is stored yet (a conversation id it has just made): no read."""
        self.stored = stored
        self.session_id = stored.session_id
        self.max_items = max(1, max_items)
        self.slack = max(4, self.max_items // 4)
        # what the store held when the turn began (newest, bounded); None until read
        self._history: list[Any] | None = [] if empty else None
        self._stored_count = 0  # items in the store (counted up to max_items + slack + 1)
        self.pending: list[Any] = []

    async def _stored_items(self) -> list[Any]:
        if self._history is None:
            items = await self.stored.get_items(limit=self.max_items + self.slack + 1)
            self._stored_count = len(items)
            self._history = items[-self.max_items:]
        return self._history

    async def get_items(self, limit: int | None = None) -> list[Any]:
        items = [*(await self._stored_items()), *self.pending]
        return items[-limit:] if limit else items

    async def add_items(self, items: list[Any]) -> None:
        self.pending.extend(items)

    async def pop_item(self) -> Any | None:
        if self.pending:
            return self.pending.pop()
        return None  # the stored history is not this turn's to change

    async def clear_session(self) -> None:
        self.pending.clear()

    async def commit(self) -> None:
        """Store this turn's items; rewrite the store to its newest `max_items` when it has grown past the bound."""
        history = await self._stored_items()
        if not self.pending:
            return
        if self._stored_count + len(self.pending) > self.max_items + self.slack:
            keep = [*history, *self.pending][-self.max_items:]
            await self.stored.clear_session()
            await self.stored.add_items(keep)
            log.info("session %s trimmed to its newest %d items", self.session_id, len(keep))
        else:
            await self.stored.add_items(self.pending)
        self.pending = []
