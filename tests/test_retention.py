"""CONVERSATION_RETENTION_DAYS: old transcripts and their agent memory are deleted (bounded store and memory)."""

from __future__ import annotations

import datetime as dt

from pymongo.errors import OperationFailure

from services.storage.conversations import MESSAGES_COLLECTION, SESSIONS_COLLECTION
from services.storage.database import CONVERSATIONS
from services.storage.retention import delete_expired, ensure_updated_at_index
from tests.utils.app import chat_lines, quick_settings, running_app
from tests.utils.phoenix import app_services, eventually

QUESTION = {"message": "How do I stream a chat response with IChatClient?"}


async def _age(database, conversation_id: str, days: int) -> None:
    """Make a conversation (transcript and agent session) look untouched for `days` days."""
    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    await database[CONVERSATIONS].update_one({"_id": conversation_id}, {"$set": {"updated_at": then}})
    await database[SESSIONS_COLLECTION].update_one({"session_id": conversation_id}, {"$set": {"updated_at": then}})


async def _stored(database, conversation_id: str) -> tuple[int, int, int]:
    return (await database[CONVERSATIONS].count_documents({"_id": conversation_id}),
            await database[SESSIONS_COLLECTION].count_documents({"session_id": conversation_id}),
            await database[MESSAGES_COLLECTION].count_documents({"session_id": conversation_id}))


async def test_expired_conversations_and_their_agent_memory_are_deleted(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        old = (await chat_lines(client, QUESTION))[1][0]["conversation_id"]
        fresh = (await chat_lines(client, QUESTION))[1][0]["conversation_id"]
        database = app_services(client).database
        assert (await _stored(database, old))[2] > 0  # the agent's memory of the turn is stored
        await _age(database, old, days=31)
        assert await delete_expired(database, retention_days=30) == 1
        assert await _stored(database, old) == (0, 0, 0)
        assert await _stored(database, fresh) != (0, 0, 0)
        assert await delete_expired(database, retention_days=0) == 0  # 0 keeps everything
        assert (await client.get(f"/api/conversations/{old}")).status_code == 404


async def test_the_sweep_runs_when_the_service_starts(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        old = (await chat_lines(client, QUESTION))[1][0]["conversation_id"]
        await _age(app_services(client).database, old, days=40)
    async with running_app(quick_settings(tmp_path, conversation_retention_days=30)) as client:
        database = app_services(client).database

        async def gone() -> bool:
            return await _stored(database, old) == (0, 0, 0)

        await eventually(gone, timeout=10, interval=0.05)


class _FakeCollection:
    """`conversations` on a MongoDB whose `updated_at_1` index exists with other options."""

    def __init__(self, existing: dict) -> None:
        self.index = existing
        self.calls: list = []

    async def create_index(self, key, **options):
        self.calls.append(("create", key, options))
        if self.index is not None and self.index != options:
            raise OperationFailure("Index with name: updated_at_1 already exists with different options", 85)
        self.index = options

    async def drop_index(self, name):
        self.calls.append(("drop", name))
        self.index = None


class _FakeMongo:
    embedded = False

    def __init__(self, collection) -> None:
        self.collection = collection

    def __getitem__(self, name):
        assert name == CONVERSATIONS
        return self.collection


async def test_mongodb_gets_a_ttl_index_replacing_the_plain_one_and_back():
    plain = _FakeCollection(existing={})
    await ensure_updated_at_index(_FakeMongo(plain), retention_days=30)
    assert plain.index == {"expireAfterSeconds": 30 * 86400}
    assert ("drop", "updated_at_1") in plain.calls
    await ensure_updated_at_index(_FakeMongo(plain), retention_days=30)  # idempotent: nothing replaced
    assert plain.calls.count(("drop", "updated_at_1")) == 1
    await ensure_updated_at_index(_FakeMongo(plain), retention_days=0)  # retention off: a plain index again
    assert plain.index == {}
