"""Conversation retention (CONVERSATION_RETENTION_DAYS): transcripts and agent memory untouched that long go.

Each stored chat keeps a transcript (`conversations`) and the agent's memory (the SDK session:
`agent_sessions` + `agent_messages`), so without retention the store, and the embedded engine's
memory with it, grows with every chat. On MongoDB a TTL index on `conversations.updated_at`
deletes transcripts; the SDK's message documents carry no date a TTL index could use, so agent
memory is swept by its session's `updated_at`: at start and every SWEEP_HOURS, on both engines (the
embedded engine, which has no TTL monitor, sweeps transcripts the same way). 0 days keeps everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from pymongo.errors import OperationFailure

from services.storage.conversations import MESSAGES_COLLECTION, SESSIONS_COLLECTION
from services.storage.database import CONVERSATIONS, Database

log = logging.getLogger(__name__)
SWEEP_HOURS = 6.0
BATCH = 500  # conversations deleted per round trip


async def ensure_updated_at_index(database: Database, *, retention_days: int) -> None:
    """`conversations.updated_at`: a TTL index on MongoDB with retention on, else a plain one (idempotent).

    An existing index with other options (retention switched on, changed or off) is replaced.
    """
    collection = database[CONVERSATIONS]
    options = {"expireAfterSeconds": int(retention_days * 86400)} if retention_days > 0 and not database.embedded else {}
    try:
        await collection.create_index("updated_at", **options)
    except OperationFailure:  # same key, other options: MongoDB will not change them in place
        with contextlib.suppress(OperationFailure):  # another worker may have replaced it already
            await collection.drop_index("updated_at_1")
        with contextlib.suppress(OperationFailure):
            await collection.create_index("updated_at", **options)


async def delete_expired(database: Database, *, retention_days: int, now: dt.datetime | None = None) -> int:
    """Delete conversations and agent sessions not updated for `retention_days`; returns how many sessions went."""
    if retention_days <= 0:
        return 0
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=retention_days)
    removed = 0
    sessions, messages = database[SESSIONS_COLLECTION], database[MESSAGES_COLLECTION]
    while True:
        expired = await sessions.find({"updated_at": {"$lt": cutoff}}, {"session_id": 1}).limit(BATCH).to_list()
        ids = [doc["session_id"] for doc in expired if "session_id" in doc]
        if not ids:
            break
        await messages.delete_many({"session_id": {"$in": ids}})  # the memory first: no orphaned items
        await sessions.delete_many({"session_id": {"$in": ids}})
        removed += len(ids)
        if len(expired) < BATCH:
            break
    # Transcripts: MongoDB's TTL monitor does it there; here for the embedded engine (and any left behind).
    await database[CONVERSATIONS].delete_many({"updated_at": {"$lt": cutoff}})
    return removed


class RetentionSweeper:
    """The background task that runs `delete_expired` at start and every SWEEP_HOURS."""

    def __init__(self, *, database: Database, retention_days: int, interval_hours: float = SWEEP_HOURS) -> None:
        self.database = database
        self.retention_days = retention_days
        self.interval = interval_hours * 3600
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self.retention_days > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="conversation-retention")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                removed = await delete_expired(self.database, retention_days=self.retention_days)
                if removed:
                    log.info("retention: deleted %d conversations older than %d days", removed, self.retention_days)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store may be briefly unavailable: the next sweep tries again
                log.warning("retention sweep failed", exc_info=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # The event ends the loop even when a cancellation is lost: Python 3.11's asyncio.wait_for (the
        # store's call timeout) can swallow one that arrives as its call completes.
        self._stopping.set()
        task.cancel()
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
