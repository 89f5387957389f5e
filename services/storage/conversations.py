"""Conversation storage: the SDK's MongoDB session is the agent's memory; `conversations` is the transcript."""

from __future__ import annotations

import datetime as dt
import uuid

from agents.extensions.memory.mongodb_session import MongoDBSession

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
                      sources: list[dict], filters: dict, status: str) -> None:
    """Append one question/answer turn (with its span id, for feedback) to the transcript."""
    now = dt.datetime.now(dt.timezone.utc)
    turn = {"span_id": span_id, "user": user, "assistant": assistant, "sources": sources,
            "filters": filters, "status": status, "timestamp": now}
    await database[CONVERSATIONS].update_one(
        {"_id": conversation_id},
        {"$setOnInsert": {"created_at": now}, "$set": {"updated_at": now},
         "$push": {"turns": turn, "span_ids": span_id}},
        upsert=True,
    )


async def get_conversation(database: Database, conversation_id: str) -> dict | None:
    return await database[CONVERSATIONS].find_one({"_id": conversation_id})


async def conversation_for_span(database: Database, span_id: str) -> dict | None:
    return await database[CONVERSATIONS].find_one({"span_ids": span_id})
