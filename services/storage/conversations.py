"""Conversation storage: the SDK's MongoDB session is the agent's memory; `conversations` is the transcript."""

from __future__ import annotations

import datetime as dt
import hmac
import uuid

from agents.extensions.memory.mongodb_session import MongoDBSession

from services.core.errors import NotFound
from services.storage.database import CONVERSATIONS, Database

SESSIONS_COLLECTION = "agent_sessions"
MESSAGES_COLLECTION = "agent_messages"


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def open_session(database: Database, conversation_id: str) -> MongoDBSession:
    """The Agents SDK session that replays this conversation's items to the model."""
    return MongoDBSession(conversation_id, client=database.client, database=database.db.name,
                          sessions_collection=SESSIONS_COLLECTION, messages_collection=MESSAGES_COLLECTION)


async def conversation_exists(database: Database, conversation_id: str) -> bool:
    return await database[CONVERSATIONS].find_one({"_id": conversation_id}, {"_id": 1}) is not None


async def record_turn(database: Database, *, conversation_id: str, span_id: str, user: str, assistant: str,
                      sources: list[dict], filters: dict, status: str, owner: str | None = None,
                      usage: dict | None = None, error: str | None = None) -> None:
    """Append one question/answer turn (with its span id, for feedback) to the transcript.

    `owner` (the hash of the magic key, production only) is written when the conversation is
    created; later turns never change it. `status` is "completed" or "failed" (then `error` is what
    the person was told); `usage` holds the turn's model tokens.
    """
    now = dt.datetime.now(dt.timezone.utc)
    turn = {"span_id": span_id, "user": user, "assistant": assistant, "sources": sources,
            "filters": filters, "status": status, "timestamp": now}
    if usage is not None:
        turn["usage"] = usage
    if error is not None:
        turn["error"] = error
    on_insert: dict = {"created_at": now}
    if owner:
        on_insert["owner"] = owner
    await database[CONVERSATIONS].update_one(
        {"_id": conversation_id},
        {"$setOnInsert": on_insert, "$set": {"updated_at": now},
         "$push": {"turns": turn, "span_ids": span_id}},
        upsert=True,
    )


def owned_by(doc: dict | None, owner: str) -> bool:
    """Whether a conversation belongs to `owner`; one without an owner (made before binding) belongs to no key."""
    stored = doc.get("owner") if doc else None
    return isinstance(stored, str) and hmac.compare_digest(stored.encode(), owner.encode())


async def get_conversation(database: Database, conversation_id: str) -> dict | None:
    return await database[CONVERSATIONS].find_one({"_id": conversation_id})


async def conversation_for_span(database: Database, span_id: str) -> dict | None:
    return await database[CONVERSATIONS].find_one({"span_ids": span_id})


async def conversation_for(database: Database, conversation_id: str, *, owner: str | None) -> dict:
    """The conversation, if `owner` may see it (any, in development where `owner` is None); else NotFound.

    Another key's conversation and an unknown id are the same 404: ids are not to be probed.
    """
    doc = await get_conversation(database, conversation_id)
    if doc is None or (owner is not None and not owned_by(doc, owner)):
        raise NotFound("Conversation not found")
    return doc
