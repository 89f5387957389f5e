"""The knowledge base's life in production: atomic re-embed, start-up vector checks, the deep model health check,
and a keyed start that cannot reach the embeddings endpoint."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from services.cli import EXIT_FATAL, EXIT_OK, run_command
from services.retrieval.embeddings import LOCAL_DIMENSIONS, LOCAL_MODEL_ID
from services.retrieval.kb_checks import REEMBED_COMMAND, KnowledgeBaseModelMismatch, KnowledgeBaseVectorsMismatch
from services.storage.database import CHUNKS, KB_META, open_database
from tests.utils.app import (CLOSED_URL, copy_seeded_data_dir, make_settings, no_retry_waits, quick_settings,
                             running_app, serve_aiohttp)

ROOT = Path(__file__).resolve().parent.parent


class FakeEmbedder:
    """Another embedding model (8-d vectors from a hash of the text); from call `fail_at` on it fails like an
    unreachable endpoint."""

    model_id = "fake-embedding-8"
    dimensions = 8

    def __init__(self, *, fail_at: int | None = None) -> None:
        self.calls = self.texts = 0
        self.fail_at = fail_at

    async def embed_documents(self, texts: list[str]) -> np.ndarray:
        import httpx2
        import openai

        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise openai.APIConnectionError(request=httpx2.Request("POST", f"{CLOSED_URL}/v1/embeddings"))
        self.texts += len(texts)
        vectors = np.array([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed_documents([text]))[0]

    def close(self) -> None:
        pass


@pytest.fixture
def kb_settings(tmp_path, seeded_data_dir):
    """A private copy of the seeded knowledge base (local embeddings); the app does not re-seed it."""
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    return make_settings(tmp_path, seed_on_startup=False)


def use_embedder(monkeypatch, embedder) -> None:
    """Make the CLI (which builds its embedder from the settings) use `embedder`."""
    import services.retrieval.embeddings as embeddings

    monkeypatch.setattr(embeddings, "create_embedder", lambda settings, client=None: embedder)


async def cli(settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return await run_command(list(argv), settings=settings, out=out), out.getvalue()


async def chunks_and_meta(settings) -> tuple[list[dict], dict]:
    database = await open_database(settings)
    try:
        chunks = await database[CHUNKS].find({}).to_list()
        meta = {d["_id"]: d for d in await database[KB_META].find({}).to_list()}
    finally:
        await database.close()
    return chunks, meta


# ---------------------------------------------------------------- atomic re-embed

async def test_an_interrupted_reembed_leaves_the_kb_serving_and_a_rerun_resumes(kb_settings, monkeypatch, capsys):
    total = len((await chunks_and_meta(kb_settings))[0])
    assert total > 64
    failing = FakeEmbedder(fail_at=3)  # two batches of 32 succeed, then the endpoint goes away
    use_embedder(monkeypatch, failing)
    code, _ = await cli(kb_settings, "ingest", "kb", "--reembed")
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == EXIT_FATAL and "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith(f"error: re-embedding with 'fake-embedding-8' stopped after 64 of {total} chunks: "
                                f"cannot reach the embeddings endpoint {CLOSED_URL}/v1/embeddings")
    assert f"run `{REEMBED_COMMAND}` again to resume" in errors[0]

    chunks, meta = await chunks_and_meta(kb_settings)
    assert all(len(c["embeddings"]) == LOCAL_DIMENSIONS for c in chunks)  # the served vectors are untouched
    assert sum("embeddings_next" in c for c in chunks) == 64
    assert meta["embedding_model"]["model_id"] == LOCAL_MODEL_ID and meta["reembed"]["state"] == "building"
    async with running_app(kb_settings) as client:  # the previous KB starts and serves whole
        kb = client.app.state.services.knowledge_base
        assert kb.size == total
        assert (await kb.search("stream chat responses with IChatClient", k=3))[0].score > 0.4

    working = FakeEmbedder()
    use_embedder(monkeypatch, working)
    code, out = await cli(kb_settings, "ingest", "kb", "--reembed")
    assert code == EXIT_OK and out.strip() == f"knowledge base: {total} chunks re-embedded"
    assert working.texts == total - 64  # resumed: the chunks done before were not embedded again
    chunks, meta = await chunks_and_meta(kb_settings)
    assert all(len(c["embeddings"]) == 8 and c["embedding_model"] == "fake-embedding-8" for c in chunks)
    assert not any("embeddings_next" in c or "embedding_model_next" in c for c in chunks)
    assert meta["embedding_model"] == {"_id": "embedding_model", "model_id": "fake-embedding-8", "dimensions": 8}
    assert "reembed" not in meta
    async with running_app(kb_settings, embedder=FakeEmbedder()) as client:
        assert client.app.state.services.knowledge_base.size == total
    with pytest.raises(KnowledgeBaseModelMismatch, match="embedded with 'fake-embedding-8'"):
        async with running_app(kb_settings):  # the local model again: refused, not served with 8-d vectors
            pass


async def test_a_switch_cut_short_is_refused_at_start_and_finished_by_the_command(kb_settings, monkeypatch):
    from services.ingest.reembed import reembed_all
    from services.retrieval.knowledge_base import KnowledgeBase

    async def power_cut(self):
        raise RuntimeError("power cut")

    database = await open_database(kb_settings)
    try:
        kb = KnowledgeBase(database=database, embedder=FakeEmbedder(), settings=kb_settings)
        monkeypatch.setattr(KnowledgeBase, "record_model", power_cut)  # after the vectors moved, before kb_meta
        with pytest.raises(RuntimeError, match="power cut"):
            await reembed_all(database=database, kb=kb)
        monkeypatch.undo()
        job = await database[KB_META].find_one({"_id": "reembed"})
    finally:
        await database.close()
    assert job["state"] == "switching"
    with pytest.raises(KnowledgeBaseModelMismatch, match=r"stopped while switching .* `python main.py ingest kb --reembed`"):
        async with running_app(kb_settings):
            pass
    assert (await cli(kb_settings, "ingest", "kb", str(ROOT / "data" / "kb")))[0] == EXIT_FATAL  # no writes meanwhile

    use_embedder(monkeypatch, finishing := FakeEmbedder())
    code, out = await cli(kb_settings, "ingest", "kb", "--reembed")
    assert code == EXIT_OK and finishing.texts == 0  # the vectors were built: only the switch was left
    _, meta = await chunks_and_meta(kb_settings)
    assert meta["embedding_model"]["model_id"] == "fake-embedding-8" and "reembed" not in meta
    async with running_app(kb_settings, embedder=FakeEmbedder()) as client:
        assert client.app.state.services.knowledge_base.ready


async def test_a_reembed_for_another_model_drops_the_interrupted_one(kb_settings, monkeypatch):
    use_embedder(monkeypatch, FakeEmbedder(fail_at=2))
    assert (await cli(kb_settings, "ingest", "kb", "--reembed"))[0] == EXIT_FATAL

    class Other(FakeEmbedder):
        model_id = "other-embedding-8"

    use_embedder(monkeypatch, other := Other())
    assert (await cli(kb_settings, "ingest", "kb", "--reembed"))[0] == EXIT_OK
    chunks, meta = await chunks_and_meta(kb_settings)
    assert other.texts == len(chunks)  # started over: the other model's 32 vectors were not kept
    assert {c["embedding_model"] for c in chunks} == {"other-embedding-8"}
    assert meta["embedding_model"]["model_id"] == "other-embedding-8" and "reembed" not in meta


# ---------------------------------------------------------------- start-up vector checks

async def test_start_up_refuses_chunks_with_missing_or_wrong_length_vectors(kb_settings):
    database = await open_database(kb_settings)
    try:
        total = await database[CHUNKS].count_documents({})
        ids = [d["_id"] for d in await database[CHUNKS].find({}, {"_id": 1}).limit(2).to_list()]
        await database[CHUNKS].update_one({"_id": ids[0]}, {"$set": {"embeddings": [0.5] * 10}})
        await database[CHUNKS].update_one({"_id": ids[1]}, {"$unset": {"embeddings": ""}})
    finally:
        await database.close()
    with pytest.raises(KnowledgeBaseVectorsMismatch) as caught:
        async with running_app(kb_settings):
            pass
    message = str(caught.value)
    assert f"2 of {total} knowledge-base chunks have no 384-dimension vector from '{LOCAL_MODEL_ID}'" in message
    assert f"`{REEMBED_COMMAND}`" in message and "\n" not in message


async def test_the_mongodb_path_counts_wrong_vectors_on_the_server(tmp_path):
    """`Database(embedded=False)` takes the MongoDB code path (a server-side count) over the embedded engine."""
    from services.retrieval.knowledge_base import KnowledgeBase
    from services.storage.database import Database
    from services.storage.embedded_mongo import EmbeddedAsyncClient

    client = EmbeddedAsyncClient(tmp_path)
    try:
        database = Database(client=client, db=client["kb"], embedded=False)
        good = [{"_id": f"c{i}", "embeddings": [0.1] * 8} for i in range(3)]
        await database[CHUNKS].insert_many([*good, {"_id": "short", "embeddings": [0.1] * 4}, {"_id": "none"}])
        kb = KnowledgeBase(database=database, embedder=FakeEmbedder(), settings=make_settings(tmp_path))
        with pytest.raises(KnowledgeBaseVectorsMismatch, match="2 of 5 knowledge-base chunks"):
            await kb.load()
        await database[CHUNKS].delete_many({"_id": {"$in": ["short", "none"]}})
        await kb.load()
        assert kb.ready
    finally:
        await client.close()


# ---------------------------------------------------------------- /health?deep=true

@pytest.fixture
async def models_endpoint():
    """A stand-in OpenAI-compatible `/v1/models`; `state` sets what it answers and counts the requests."""
    state = {"requests": 0, "status": 200, "models": ["gpt-4.1-mini", "text-embedding-3-small"]}

    async def models(request):
        state["requests"] += 1
        if state["status"] != 200:
            return web.json_response({"error": {"message": "upstream down"}}, status=state["status"])
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                              "owned_by": "x"} for m in state["models"]]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    async with serve_aiohttp(app) as base_url:
        yield f"{base_url}/v1", state


async def test_deep_health_asks_the_model_endpoint_and_caches_the_answer(tmp_path, models_endpoint):
    base_url, state = models_endpoint
    settings = quick_settings(tmp_path, openai_base_url=base_url, openai_api_key="sk-test")
    async with running_app(settings) as client:
        plain = (await client.get("/health")).json()["components"]["model"]
        assert plain == {"ready": True, "detail": "compatible (gpt-4.1-mini): not checked (use ?deep=true)"}
        assert state["requests"] == 0  # plain /health stays cheap
        deep = (await client.get("/health", params={"deep": "true"})).json()
        assert deep["status"] == "healthy" and deep["components"]["model"]["ready"] is True
        assert f"compatible {base_url}/: reachable, model 'gpt-4.1-mini' available" in deep["components"]["model"]["detail"]
        state["status"] = 503
        again = (await client.get("/health?deep=true")).json()["components"]["model"]
        assert again["ready"] is True and state["requests"] == 1  # cached for HEALTH_DEEP_CACHE_SECONDS


async def test_deep_health_reports_what_is_wrong(tmp_path, models_endpoint):
    from services.agent.model_probe import ModelProbe
    from services.core.openai_client import open_openai_client
    from tests.utils.app import FakeClock

    base_url, state = models_endpoint
    clock = FakeClock()
    openai_client = open_openai_client(quick_settings(tmp_path, openai_base_url=base_url))
    probe = ModelProbe(mode="compatible", model="gpt-4.1-mini", openai_client=openai_client, cache_seconds=60, clock=clock)
    try:
        assert (await probe.check()).ready
        clock.advance(30)
        assert (await probe.check()).detail.endswith("(checked 30 s ago)")
        state["models"] = ["llama3.1"]
        clock.advance(31)
        status = await probe.check()
        assert not status.ready and "does not list the model 'gpt-4.1-mini'" in status.detail
        state["status"] = 500
        clock.advance(61)
        status = await probe.check()
        assert not status.ready and "InternalServerError" in status.detail
        probe_down = ModelProbe(mode="openai", model="gpt-4.1-mini", clock=clock, timeout_seconds=2,
                                openai_client=open_openai_client(quick_settings(tmp_path, openai_base_url=CLOSED_URL + "/v1")))
        status = await probe_down.check()
        assert not status.ready and ("APIConnectionError" in status.detail or "APITimeoutError" in status.detail)  # refused, or the short probe timeout on a loaded machine
    finally:
        await openai_client.close()
    offline = ModelProbe(mode="offline", model="gpt-4.1-mini")
    assert (await offline.check()).ready and offline.unchecked().detail == "offline: built in, always ready"


# ---------------------------------------------------------------- a keyed start without network

@pytest.fixture
def no_network(monkeypatch):
    """OpenAI's endpoint unreachable: every HTTPS request goes to a proxy on a closed loopback port."""
    for name in ("NO_PROXY", "no_proxy", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", CLOSED_URL)
    return {**os.environ, "HTTPS_PROXY": CLOSED_URL}


async def test_a_keyed_start_that_cannot_embed_fails_with_one_clear_line(tmp_path, no_network, monkeypatch):
    from services.ingest.kb_sync import EmbeddingsUnavailable

    no_retry_waits(monkeypatch)  # the app and the CLI retry as configured, without the backoff waits
    settings = make_settings(tmp_path, openai_api_key="sk-test")  # fresh data dir: the seed needs OpenAI embeddings
    with pytest.raises(EmbeddingsUnavailable) as caught:
        async with running_app(settings):
            pass
    message = str(caught.value)
    assert message.startswith("cannot reach the embeddings endpoint https://api.openai.com/v1/embeddings to build "
                              "the knowledge base: APIConnectionError: Connection error.")
    assert message.endswith("check the network or unset OPENAI_API_KEY to use the local model") and "\n" not in message
    code, _ = await cli(settings, "seed")  # the CLI says the same in one line
    assert code == EXIT_FATAL


@pytest.mark.slow  # `python main.py` in a subprocess
async def test_main_py_keyed_without_network_exits_2_with_one_line(tmp_path, no_network):
    from tests.utils.app import free_port

    env = {**no_network, "DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": "sk-test", "MONGODB_URI": "",
           "ENVIRONMENT": "development", "PORT": str(free_port()), "MCP_SERVERS": "[]", "PHOENIX_COLLECTOR_ENDPOINT": ""}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "main.py"], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=180)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert errors == [line for line in errors if "cannot reach the embeddings endpoint https://api.openai.com/v1/" in line]
    assert len(errors) == 1, result.stderr
