"""The embedded engine behind pymongo's async API: queries, persistence across restarts, one writer."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo.errors import DuplicateKeyError

from services.storage.embedded_mongo import DataDirInUseError, EmbeddedAsyncClient
from tests.utils.app import chat_lines, make_settings, running_app


async def test_query_documents_work_like_pymongo(tmp_path):
    client = EmbeddedAsyncClient(tmp_path)
    try:
        coll = client["db"]["items"]
        await coll.create_index("key", unique=True)
        when = dt.datetime(2025, 5, 1)
        await coll.insert_many([{"key": i, "tags": ["a", "b"] if i % 2 else ["c"], "when": when + dt.timedelta(days=i),
                                 "title": f"Item {i}"} for i in range(10)])
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"key": 3})
        page = await coll.find({"$or": [{"tags": "a"}, {"title": {"$regex": "item 4", "$options": "i"}}]},
                               {"_id": 0, "key": 1}).sort([("when", -1), ("key", 1)]).skip(1).limit(3).to_list()
        assert [d["key"] for d in page] == [7, 5, 4]
        assert await coll.count_documents({"tags": {"$in": ["c"]}}) == 5
        assert sorted(await coll.distinct("tags")) == ["a", "b", "c"]
        await coll.update_one({"key": 42}, {"$set": {"x": 1}, "$push": {"log": "new"}, "$inc": {"n": 2}}, upsert=True)
        doc = await coll.find_one({"key": 42})
        assert doc["log"] == ["new"] and doc["n"] == 2
        cursor = await coll.aggregate([{"$match": {"tags": "c"}}, {"$group": {"_id": None, "n": {"$sum": 1}}}])
        assert (await cursor.to_list())[0]["n"] == 5
        assert [d["key"] async for d in coll.find({"key": {"$lt": 2}}).sort("key", 1)] == [0, 1]
    finally:
        await client.close()


async def test_reading_a_whole_collection_returns_what_the_query_engine_returns(tmp_path):
    # find() with no filter and at most a projection of top-level fields skips mongomock's per-value copy
    # (the knowledge base's vectors at start-up); `.skip(0)` takes the engine's own path for comparison.
    client = EmbeddedAsyncClient(tmp_path)
    try:
        coll = client["db"]["chunks"]
        when = dt.datetime(2025, 5, 1)
        await coll.insert_many([
            {"title": "first", "embeddings": [0.25, -1.0, 3.5], "tags": ["a"], "section": {"at": when, "n": [1, {"k": when}]}},
            {"_id": "named", "embeddings": [1.0], "title": "second", "extra": None},
            {"content": "no title, no vector", "when": when},
        ])
        await coll.delete_many({"title": "first", "missing": True})  # a write between inserts and reads changes nothing
        for projection in (None, {"title": 1, "embeddings": 1}, {"embeddings": True, "_id": 0}, {"_id": 1, "section": 1},
                           {"title": 1, "section.at": 1}, {"title": 0}, {"_id": 0}):
            fast = await coll.find({}, projection).to_list()
            engine = await coll.find({}, projection).skip(0).to_list()
            assert fast == engine and [list(d) for d in fast] == [list(d) for d in engine], projection
        assert (await coll.find({}, {"title": 1}).to_list(2)) == (await coll.find({}, {"title": 1}).skip(0).to_list(2))
        assert (await coll.find({}).to_list())[0]["section"]["n"][1]["k"].tzinfo is dt.timezone.utc
    finally:
        await client.close()


# Documents as litemongo's index sees them: scalars, lists (several keys), None and missing fields (unkeyed).
_values = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "c"]), st.none(),
                    st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"])), max_size=3))
_operations = st.lists(st.tuples(st.sampled_from(["add", "remove", "ask"]), st.sampled_from(["d1", "d2", "d3", "d4"]),
                                 st.one_of(st.just({}), st.builds(lambda v: {"f": v}, _values))), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_operations)
def test_the_compact_query_index_finds_exactly_what_litemongos_own_index_finds(operations):
    from litemongo._vendor.mongomock import indexing

    from services.storage import compact_index

    assert compact_index.install()  # the pinned litemongo: the compact index is what the app runs
    original = indexing.FieldIndex.__mro__[1]
    assert original.__name__ == "FieldIndex" and original.__module__ == indexing.__name__
    ours, theirs = indexing.FieldIndex("f"), original("f")
    present: set[str] = set()
    for op, store_key, doc in operations:
        if op == "add":  # as CollectionIndexes.add does: a replaced document is removed first
            if store_key in present:
                ours.remove(store_key), theirs.remove(store_key)
            ours.add(store_key, doc), theirs.add(store_key, doc)
            present.add(store_key)
        elif op == "remove":
            ours.remove(store_key), theirs.remove(store_key)
            present.discard(store_key)
        for keys in ([indexing._key_for(v)] for v in (-3, 0, 1, 3, "a", "b", "c")):
            assert ours.candidates(keys) == theirs.candidates(keys)
        assert ours.candidates([indexing._key_for(1), indexing._key_for("a")]) == \
            theirs.candidates([indexing._key_for(1), indexing._key_for("a")])
    assert set(ours._doc_keys) == set(theirs._doc_keys)


async def test_a_second_process_is_refused_clearly(tmp_path):
    first = EmbeddedAsyncClient(tmp_path)
    try:
        with pytest.raises(DataDirInUseError, match="already used by another process"):
            EmbeddedAsyncClient(tmp_path)
    finally:
        await first.close()
    second = EmbeddedAsyncClient(tmp_path)  # free again once the first closed
    await second.close()


async def test_restart_keeps_conversations_and_knowledge_base(seeded_settings):
    async with running_app(seeded_settings) as client:
        _, lines = await chat_lines(client, {"message": "What is ML.NET?"})
        conversation_id = lines[0]["conversation_id"]
        chunks = client.app.state.services.knowledge_base.size
    async with running_app(seeded_settings) as client:  # a new app on the same data dir
        response = await client.get(f"/api/conversations/{conversation_id}")
        assert response.status_code == 200
        assert response.json()["turns"][0]["user"] == "What is ML.NET?"
        assert client.app.state.services.knowledge_base.size == chunks
        _, again = await chat_lines(client, {"message": "How does AutoML help?", "conversation_id": conversation_id})
        assert again[-1]["type"] == "complete"
        turns = (await client.get(f"/api/conversations/{conversation_id}")).json()["turns"]
        assert len(turns) == 2


async def test_model_mismatch_is_a_clear_startup_error(seeded_settings):
    from services.storage.database import KB_META
    from services.retrieval.knowledge_base import KnowledgeBaseModelMismatch

    async with running_app(seeded_settings) as client:
        await client.app.state.services.database[KB_META].update_one(
            {"_id": "embedding_model"}, {"$set": {"model_id": "text-embedding-3-small", "dimensions": 1536}})
    with pytest.raises(KnowledgeBaseModelMismatch, match=r"python main.py ingest kb --reembed"):
        async with running_app(seeded_settings):
            pass


def test_settings_reject_placeholder_secrets_in_production(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="placeholder"):
        make_settings(tmp_path, environment="production", openai_api_key="changeme")
    assert make_settings(tmp_path, environment="staging").is_development is False  # unknown means production


async def test_an_unreachable_mongodb_is_one_startup_line_without_the_password(tmp_path):
    from services.core.errors import StartupError
    from tests.utils.app import free_port

    port = free_port()
    settings = make_settings(tmp_path, mongodb_uri=f"mongodb://buddy:SECRETpw@127.0.0.1:{port}/", store_timeout_seconds=0.5)
    with pytest.raises(StartupError) as caught:
        async with running_app(settings):
            pass
    message = str(caught.value)
    assert message.startswith(f"cannot reach MongoDB from MONGODB_URI within STORE_TIMEOUT_SECONDS=0.5: "
                              f"ServerSelectionTimeoutError: 127.0.0.1:{port}")
    assert "SECRETpw" not in message and "\n" not in message and "Topology" not in message


@pytest.mark.slow  # `python main.py` with two worker processes
async def test_workers_that_cannot_start_exit_2_with_one_line_each(tmp_path):
    import asyncio
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.utils.app import free_port

    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "WORKERS": "2", "PORT": str(free_port()),
           "MONGODB_URI": f"mongodb://buddy:SECRETpw@127.0.0.1:{free_port()}/", "STORE_TIMEOUT_SECONDS": "0.5",
           "OPENAI_API_KEY": "", "MCP_SERVERS": "[]", "PHOENIX_COLLECTOR_ENDPOINT": "", "ENVIRONMENT": "development"}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "main.py"], env=env, capture_output=True,
                                     text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr and "SECRETpw" not in result.stderr
    assert 1 <= len(errors) <= 2 and all("cannot reach MongoDB" in line for line in errors), result.stderr
