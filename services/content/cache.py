"""Shared read-side helpers for news and samples: literal search, page maths, embedded snapshots.

Why snapshots: litemongo evaluates every query in Python over decoded BSON, so on 10k documents a
sorted page, a count or a `$regex` search each take 0.4-1 s (measured). On the embedded engine the
news and samples collections are therefore read once into memory and paged/searched there. A
second, read-only SQLite connection to the collection's file reads `PRAGMA data_version`, which
changes whenever any other connection (litemongo's included) commits; so the snapshot reloads
after every write, whoever made it, for ~8 µs per request. On MongoDB the queries run on the
server with indexes and no snapshot is used, unless state is shared (SHARED_STATE=mongo, the default
with MONGODB_URI): then every worker keeps snapshots and reloads one when the collection's version
counter (`kb_meta`, bumped by every write through `bump_version`) has moved, whoever wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import inspect
import logging
import math
import re
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Generic, TypeVar

import pymongo
from bson import ObjectId

log = logging.getLogger(__name__)

# Search text beyond this is ignored: it bounds the server-side pattern (MongoDB caps regex
# length) and the work per document, while any real title/author/keyword fits well within it.
MAX_SEARCH_CHARS = 200
# Without a change signal (unknown file layout) a snapshot is trusted for at most this long.
FALLBACK_TTL_SECONDS = 5.0
# Loading a snapshot reads every document at once; the per-call store timeout is for requests.
BULK_LOAD_SECONDS = 600.0

T = TypeVar("T")


def normalise_search(text: str | None) -> str:
    """The literal text to look for: trimmed, NUL-free, at most MAX_SEARCH_CHARS ('' = no search)."""
    if not text:
        return ""
    # MongoDB rejects patterns holding NUL; a NUL in a search box is never meant anyway.
    return text.replace("\x00", "").strip()[:MAX_SEARCH_CHARS].strip()


def literal_regex(text: str) -> dict:
    """A MongoDB `$regex` condition matching `text` literally, case-insensitively."""
    return {"$regex": re.escape(text), "$options": "i"}


def page_count(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0


def skip_for(page: int, page_size: int) -> int:
    return (page - 1) * page_size


def as_utc(value: Any) -> dt.datetime | None:
    """A stored date (datetime or ISO/RFC-822 string) as an aware UTC datetime; anything else None."""
    if isinstance(value, ObjectId):
        return (4, str(value))  # hex order is byte order
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    else:
        return None
    if moment.tzinfo is None:  # a stored ISO/RFC-822 string without an offset: UTC by convention
        return moment.replace(tzinfo=dt.timezone.utc)
    try:
        return moment.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        return None


def bson_sort_key(value: Any) -> tuple:
    """Order values the way MongoDB sorts mixed BSON types (missing < numbers < strings < ... < dates).

    The snapshot must page in the same order as the server would for the same data, including
    an existing deployment's documents whose dates are strings.
    """
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, int(value))
    if isinstance(value, (int, float)):
        return (1, float(value)) if not (isinstance(value, float) and math.isnan(value)) else (1, -math.inf)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, ObjectId):
        return (4, str(value))  # hex order is byte order
    if isinstance(value, dt.datetime):
        return (6, value.timestamp())
    return (3, str(value))


class TextIndex:
    """Lower-cased searchable text per item; recent searches' results are remembered.

    Each item's fields are joined with NUL, which `normalise_search` removes from the needle, so a
    match never spans two fields (as with per-field `$regex`). A scan of 10k news items takes
    ~10-30 ms here; a snapshot only changes on writes, so repeated searches are served from memory.
    """

    def __init__(self, fields_per_item: list[list[Any]], *, remember: int = 256) -> None:
        self._texts = ["\x00".join(v.lower() for v in fields if isinstance(v, str)) for fields in fields_per_item]
        self._remember = remember
        self._recent: OrderedDict[str, list[int]] = OrderedDict()

    def matches(self, text: str) -> list[int]:
        """Positions of the items containing `text` (case-insensitive), in item order."""
        needle = text.lower()
        found = self._recent.get(needle)
        if found is None:
            found = [i for i, haystack in enumerate(self._texts) if needle in haystack]
            self._recent[needle] = found
            if len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(needle)
        return found


VERSION_PREFIX = "content_version:"  # kb_meta documents: {_id: "content_version:<collection>", version}


async def bump_version(database: Any, collection: str) -> None:
    """Count one write to `collection` (every writer calls this after writing), so snapshots everywhere reload."""
    from services.storage.database import KB_META

    await database[KB_META].update_one({"_id": VERSION_PREFIX + collection}, {"$inc": {"version": 1}}, upsert=True)


class CounterWatch:
    """A collection's write counter, read from the database on every look (one `_id` lookup)."""

    def __init__(self, database: Any, collection: str) -> None:
        self._database = database
        self._id = VERSION_PREFIX + collection

    async def version(self) -> int | None:
        from services.storage.database import KB_META

        doc = await self._database[KB_META].find_one({"_id": self._id})
        return int(doc.get("version", 0)) if doc else 0

    def close(self) -> None:
        pass


class DataVersionWatch:
    """Tells whether an SQLite file was committed to by another connection since the last look."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def version(self) -> int | None:
        """The file's current data version, or None when it cannot be read."""
        if self._path is None:
            return None
        if self._connection is None:
            if not self._path.exists():
                return None
            try:
                self._connection = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error:
                return None
        try:
            return self._connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class _Loaded(Generic[T]):
    value: T
    version: int | None
    loaded_at: float


class CollectionView(Generic[T]):
    """An in-memory, prepared copy of one embedded collection, reloaded after any write to it."""

    def __init__(self, *, load: Callable[[], Awaitable[list[dict]]], prepare: Callable[[list[dict]], T],
                 watch: "DataVersionWatch | CounterWatch") -> None:
        self._load = load
        self._prepare = prepare
        self._watch = watch
        self._loaded: _Loaded[T] | None = None
        self._lock = asyncio.Lock()
        self._warned = False

    def _fresh(self, version: int | None) -> bool:
        loaded = self._loaded
        if loaded is None:
            return False
        if version is None:
            if not self._warned:
                self._warned = True
                log.warning("no change signal for an embedded collection; snapshots expire after %.0f s",
                            FALLBACK_TTL_SECONDS)
            return time.monotonic() - loaded.loaded_at < FALLBACK_TTL_SECONDS
        return loaded.version == version

    async def _version(self) -> int | None:
        version = self._watch.version()
        return await version if inspect.isawaitable(version) else version

    async def get(self) -> T:
        version = await self._version()
        if self._fresh(version):
            return self._loaded.value  # type: ignore[union-attr]
        async with self._lock:  # one reload for many concurrent requests
            version = await self._version()  # read before loading: a racing write triggers a reload
            if not self._fresh(version):
                with pymongo.timeout(BULK_LOAD_SECONDS):  # a whole collection, not a request-sized call
                    docs = await self._load()
                value = await asyncio.to_thread(self._prepare, docs)
                self._loaded = _Loaded(value=value, version=version, loaded_at=time.monotonic())
                del docs
                # The snapshot is tens of thousands of long-lived objects: left to the cyclic GC, every
                # full collection walks them all (measured: ~200 ms p99 stalls on every route at 10k
                # docs). Freezing moves them out of its sight; plain data is still freed by refcount.
                gc.freeze()
            return self._loaded.value  # type: ignore[union-attr]

    def close(self) -> None:
        self._watch.close()
        gc.unfreeze()  # what this app froze can be collected again once it has shut down
