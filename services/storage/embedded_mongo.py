"""An async facade over litemongo that mirrors the parts of `pymongo.AsyncMongoClient` we use.

litemongo (mongomock's query engine over SQLite files) is synchronous and its SQLite objects must
stay on the thread that created them, so every call runs on one dedicated worker thread. The
facade returns the same shapes as pymongo's async API (`find()` returns a cursor synchronously,
`await aggregate()` returns a cursor, `to_list()` is awaited), so services hold one code path.
The engine serves one process: `acquire_data_dir_lock` refuses a second one clearly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pymongo import _csot  # the deadline set by `pymongo.timeout()`, honoured here too

from services.core.errors import ServiceUnavailable, StartupError


class DataDirInUseError(StartupError):
    """Another process already serves this embedded data directory."""


def acquire_data_dir_lock(data_dir: Path):
    """Take an exclusive lock on the data dir; return the open lock file (keep it open)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "embedded.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUseError(
            f"The embedded database in {data_dir} is already used by another process (pid {owner}). "
            "The embedded engine serves one process: stop the other one, point DATA_DIR elsewhere, "
            "or set MONGODB_URI to use a MongoDB server."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class StoreTimeout(ServiceUnavailable, TimeoutError):
    """The embedded store did not answer within `STORE_TIMEOUT_SECONDS` (e.g. another writer holds its lock)."""

    def __init__(self) -> None:
        super().__init__("The database did not answer in time. Please try again in a moment.")


class _Worker:
    """One thread that owns every litemongo/SQLite object."""

    def __init__(self, timeout_seconds: float | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-mongo")
        self._timeout = timeout_seconds

    async def run(self, fn, *args, **kwargs):
        # Like pymongo's timeoutMS: a caller waits at most the store timeout (queue + work), so a stalled
        # store ends a request with an error instead of hanging it; the call itself finishes on the worker.
        # `with pymongo.timeout(s):` overrides it for a block (bulk loads at startup), as on MongoDB.
        loop = asyncio.get_running_loop()
        override = _csot.remaining()
        future = loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation that arrives as the call
        # finishes, which left shutdowns (a cancelled background task mid-call) hanging.
        try:
            async with asyncio.timeout(self._timeout if override is None else max(0.0, override)):
                return await future
        except TimeoutError:
            raise StoreTimeout() from None

    def run_sync(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


_SCALARS = frozenset((float, int, str, bool, type(None)))


def utc_aware(value: Any) -> Any:
    """Datetimes in a returned document as aware UTC, as pymongo gives them with `tz_aware=True`.

    litemongo stores UTC but hands datetimes back naive; fixing them here, once, means no caller
    has to know which engine it talks to.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list, dt.datetime)):
                value[key] = utc_aware(item)
    elif isinstance(value, list):
        if _SCALARS.issuperset(map(type, value)):  # a vector or a list of names: nothing to fix, checked in C
            return value
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, dt.datetime)):
                value[index] = utc_aware(item)
    elif isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _whole_collection_projection(filter: Any, projection: Any, options: dict) -> tuple[frozenset | None, bool] | None:
    """(fields, keep `_id`) when `find(filter, projection, **options)` reads every document with at most a
    projection that includes top-level fields (`{"a": 1, "b": 1}`, `_id` may be 0); else None."""
    if filter or options:
        return None
    if projection is None:
        return None, True
    if not isinstance(projection, dict):
        return None
    keep_id = projection.get("_id", 1)
    fields = {name: value for name, value in projection.items() if name != "_id"}
    if (keep_id not in (0, 1) or not fields or any(type(v) not in (int, bool) or v != 1 for v in fields.values())
            or any(not isinstance(name, str) or "." in name or name.startswith("$") for name in fields)):
        return None
    return frozenset(fields), bool(keep_id)


def _scan(collection, fields: frozenset | None, keep_id: bool):
    """Every document in natural order, projected as mongomock's `find` would (fields in document order, then
    `_id`), straight from litemongo's store: it decodes each document anew, so mongomock's defensive copy of
    every value (most of the time of reading vectors, e.g. the knowledge base at start-up) is not needed."""
    for doc in collection._store.documents:
        if fields is None:
            yield doc
            continue
        projected = {name: value for name, value in doc.items() if name in fields}
        if keep_id and "_id" in doc:
            projected["_id"] = doc["_id"]
        yield projected


class EmbeddedCursor:
    """A lazy cursor: options are recorded, the query runs on the worker at `to_list`.

    `scan`, when given, reads the same documents as `make_cursor()` faster; it serves when no option is chained.
    """

    def __init__(self, worker: _Worker, make_cursor, scan=None) -> None:
        self._worker = worker
        self._make_cursor = make_cursor
        self._scan = scan
        self._ops: list[tuple[str, tuple, dict]] = []
        self._buffer: list[dict] | None = None

    def _chain(self, name: str, *args, **kwargs) -> "EmbeddedCursor":
        self._ops.append((name, args, kwargs))
        return self

    def sort(self, *args, **kwargs) -> "EmbeddedCursor":
        return self._chain("sort", *args, **kwargs)

    def skip(self, n: int) -> "EmbeddedCursor":
        return self._chain("skip", n)

    def limit(self, n: int) -> "EmbeddedCursor":
        return self._chain("limit", n)

    def batch_size(self, n: int) -> "EmbeddedCursor":
        return self

    def _materialise(self, length: int | None) -> list[dict]:
        if self._scan is not None and not self._ops:
            cursor = self._scan()
        else:
            cursor = self._make_cursor()
            for name, args, kwargs in self._ops:
                cursor = getattr(cursor, name)(*args, **kwargs)
        out = []
        for doc in cursor:
            out.append(utc_aware(doc))
            if length is not None and len(out) >= length:
                break
        return out

    async def to_list(self, length: int | None = None) -> list[dict]:
        return await self._worker.run(self._materialise, length)

    def __aiter__(self):
        return self

    async def __anext__(self) -> dict:
        if self._buffer is None:
            self._buffer = await self.to_list()
        if not self._buffer:
            raise StopAsyncIteration
        return self._buffer.pop(0)

    async def close(self) -> None:
        self._buffer = []


class EmbeddedCollection:
    """Async methods with pymongo's names and arguments, run on the worker thread."""

    def __init__(self, worker: _Worker, collection) -> None:
        self._worker = worker
        self._c = collection
        self.name = collection.name

    def find(self, filter: dict | None = None, projection: Any = None, **kwargs) -> EmbeddedCursor:
        whole = _whole_collection_projection(filter, projection, kwargs)
        scan = None if whole is None else (lambda: _scan(self._c, *whole))
        return EmbeddedCursor(self._worker, lambda: self._c.find(filter or {}, projection, **kwargs), scan)

    async def aggregate(self, pipeline: list[dict], **kwargs) -> EmbeddedCursor:
        return EmbeddedCursor(self._worker, lambda: self._c.aggregate(pipeline, **kwargs))

    def with_options(self, **_kwargs) -> "EmbeddedCollection":
        """Read preferences and write concerns mean nothing to a single local engine."""
        return self

    def __getattr__(self, name: str):
        # find_one, insert_one/many, update_one/many, replace_one, delete_one/many,
        # count_documents, distinct, create_index, find_one_and_update, bulk_write, drop ...
        target = getattr(self._c, name)
        if not callable(target):
            return target

        async def call(*args, **kwargs):
            return utc_aware(await self._worker.run(target, *args, **kwargs))

        return call


class EmbeddedDatabase:
    def __init__(self, worker: _Worker, database) -> None:
        self._worker = worker
        self._db = database
        self.name = database.name
        self._collections: dict[str, EmbeddedCollection] = {}

    def __getitem__(self, name: str) -> EmbeddedCollection:
        if name not in self._collections:
            self._collections[name] = EmbeddedCollection(self._worker, self._worker.run_sync(self._db.get_collection, name))
        return self._collections[name]


    async def list_collection_names(self) -> list[str]:
        return await self._worker.run(self._db.list_collection_names)

    async def command(self, name: str, *args, **kwargs) -> dict:
        if name == "ping":
            return {"ok": 1.0}
        raise NotImplementedError(f"embedded engine has no '{name}' command")


class EmbeddedAsyncClient:
    """The embedded stand-in for `pymongo.AsyncMongoClient`, persisted under `data_dir`."""

    def __init__(self, data_dir: Path, *, timeout_seconds: float | None = None) -> None:
        import litemongo

        from services.storage.compact_index import install

        install()  # ~40 % of the query index's memory per stored document (see compact_index.py)
        self._data_dir = Path(data_dir)
        self._lock = acquire_data_dir_lock(self._data_dir)
        self._worker = _Worker(timeout_seconds)
        path = str((self._data_dir / "mongo").absolute())
        self._client = self._worker.run_sync(litemongo.connect, path)
        self._databases: dict[str, EmbeddedDatabase] = {}
        self.admin = self["admin"]

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        if name not in self._databases:
            self._databases[name] = EmbeddedDatabase(self._worker, self._worker.run_sync(self._client.get_database, name))
        return self._databases[name]

    def get_database(self, name: str) -> EmbeddedDatabase:
        return self[name]

    def append_metadata(self, *_args, **_kwargs) -> None:
        """pymongo's driver-info hook; nothing to record for the embedded engine."""

    async def close(self) -> None:
        # no store timeout here: closing waits for the worker's queue to drain
        await asyncio.get_running_loop().run_in_executor(self._worker._pool, self._client.close)
        self._worker.shutdown()
        self._lock.close()
