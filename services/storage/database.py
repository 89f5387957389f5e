"""Opens the one database client: Atlas/MongoDB via pymongo's async driver, or the embedded engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from services.core.settings import Settings

log = logging.getLogger(__name__)

# Collection names (the first four are the original deployment's; keep them).
CHUNKS = "document_chunks"
NEWS = "documents"
SAMPLES = "samples"
USERS = "userRegistrations"
CONVERSATIONS = "conversations"
FEEDBACK = "feedback"
TELEMETRY = "telemetry"
KB_META = "kb_meta"
KB_DOCUMENTS = "kb_documents"


@dataclass
class Database:
    """The client and the database handle; `embedded` tells which engine serves them."""

    client: Any
    db: Any
    embedded: bool

    def __getitem__(self, name: str) -> Any:
        return self.db[name]

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
            return True
        except Exception:  # readiness probe: any failure means not ready
            log.warning("database ping failed", exc_info=True)
            return False

    async def close(self) -> None:
        await self.client.close()


async def require_reachable(database: Database, settings: Settings) -> None:
    """At start-up: MongoDB answers a ping, or one `StartupError` line says where and why not.

    pymongo connects lazily, so without this the first collection call (index creation) fails deep in
    the lifespan with a long traceback. Its error names hosts, never the URI's credentials.
    """
    import pymongo.errors

    from services.core.errors import StartupError, describe_failure

    try:
        await database.db.command("ping")
    except pymongo.errors.PyMongoError as exc:
        reason = describe_failure(exc).split(" (configured timeouts")[0].split(", Timeout:")[0][:200]
        raise StartupError(f"cannot reach MongoDB from MONGODB_URI within STORE_TIMEOUT_SECONDS="
                           f"{settings.store_timeout_seconds:g}: {reason} — check the host, the credentials and "
                           "the cluster's network access list") from None


async def open_database(settings: Settings) -> Database:
    """Connect to MongoDB when `MONGODB_URI` is set, else open the embedded on-disk engine."""
    if settings.mongodb_uri:
        from pymongo import AsyncMongoClient

        timeout_ms = int(settings.store_timeout_seconds * 1000)
        client = AsyncMongoClient(
            settings.mongodb_uri,
            appname="csharp-ai-buddy-api",
            serverSelectionTimeoutMS=timeout_ms,
            timeoutMS=timeout_ms,
            tz_aware=True,
        )
        return Database(client=client, db=client[settings.database_name], embedded=False)

    from services.storage.embedded_mongo import EmbeddedAsyncClient

    client = EmbeddedAsyncClient(settings.data_dir, timeout_seconds=settings.store_timeout_seconds)
    return Database(client=client, db=client[settings.database_name], embedded=True)


async def ensure_indexes(database: Database, *, conversation_retention_days: int = 0) -> None:
    """Create the indexes our own collections need; idempotent on both engines."""
    from services.storage.retention import ensure_updated_at_index

    await database[CONVERSATIONS].create_index("span_ids")
    # a TTL index on MongoDB when conversations expire (CONVERSATION_RETENTION_DAYS)
    await ensure_updated_at_index(database, retention_days=conversation_retention_days)
    await database[KB_DOCUMENTS].create_index("doc_id", unique=True)
    await database[CHUNKS].create_index("doc_id")
