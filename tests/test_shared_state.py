"""Shared state between workers (SHARED_STATE=mongo): two apps on ONE database, in one process, as two workers.

There is no MongoDB server here: both apps get the same open embedded `Database` (`create_app(...,
database=)`), and SHARED_STATE=mongo forces the paths MONGODB_URI selects: rate-limit windows
counted with `$inc`, feedback rows claimed with leases, content snapshots on version counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import Counter

import httpx
from aiohttp import web
from asgi_lifespan import LifespanManager

from services.content.cache import CounterWatch
from services.content.news import upsert_feed_item
from services.storage.database import FEEDBACK, open_database
from tests.utils.app import build_app, free_port, quick_settings, serve_aiohttp
from tests.utils.phoenix import app_services, eventually

QUESTION = {"message": "How do I stream a chat response with IChatClient?"}


@contextlib.asynccontextmanager
async def two_workers(settings):
    """Two apps (clients A and B) on one open database, which this helper owns and closes."""
    database = await open_database(settings)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for _ in range(2):
                app = build_app(settings, database=database)
                manager = await stack.enter_async_context(LifespanManager(app, startup_timeout=180))
                client = await stack.enter_async_context(httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver", timeout=60))
                client.app = app
                clients.append(client)
            yield clients
    finally:
        await database.close()


async def test_a_rate_limit_of_n_allows_n_in_total_across_both_workers(tmp_path):
    settings = quick_settings(tmp_path, shared_state="mongo", rate_limit_chat=3)
    async with two_workers(settings) as (a, b):
        statuses = [(await client.post("/api/chat", json=QUESTION)).status_code for client in (a, b, a, b, a)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = await b.post("/api/chat", json=QUESTION)
        assert refused.headers["X-RateLimit-Remaining"] == "0" and int(refused.headers["Retry-After"]) >= 1


async def test_without_shared_state_each_worker_counts_alone(tmp_path):
    settings = quick_settings(tmp_path, shared_state="process", rate_limit_chat=1)
    async with two_workers(settings) as (a, b):
        assert [(await c.post("/api/chat", json=QUESTION)).status_code for c in (a, b, a)] == [200, 200, 429]


@contextlib.asynccontextmanager
async def phoenix_standin():
    """A Phoenix that counts annotations per span (slowly: each takes 50 ms) and accepts traces."""
    counts: Counter = Counter()

    async def annotate(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(0.05)
        for item in body["data"]:
            counts[item["span_id"]] += 1
        return web.json_response({"data": [{"id": f"ann-{sum(counts.values())}"}]})

    async def traces(_request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/span_annotations", annotate)
    app.router.add_post("/v1/traces", traces)
    async with serve_aiohttp(app) as url:
        yield url, counts


async def test_each_feedback_is_delivered_once_by_one_of_the_workers(tmp_path):
    async with phoenix_standin() as (url, counts):
        settings = quick_settings(tmp_path, shared_state="mongo", phoenix_collector_endpoint=url)
        async with two_workers(settings) as (a, b):
            spans = [f"{n:016x}" for n in range(1, 13)]
            for n, span in enumerate(spans):
                response = await (a if n % 2 else b).post("/api/feedback",
                                                          json={"span_id": span, "feedback_type": "thumbs_up"})
                assert response.status_code == 200
            database = app_services(a).database

            async def all_delivered() -> bool:
                return await database[FEEDBACK].count_documents({"delivery.phoenix.state": "delivered"}) == len(spans)

            await eventually(all_delivered, timeout=30)
            await asyncio.sleep(0.3)  # a duplicate send would land by now
    assert counts == Counter({span: 1 for span in spans})


async def test_news_ingested_through_one_worker_is_served_by_the_other(tmp_path):
    settings = quick_settings(tmp_path, shared_state="mongo")
    async with two_workers(settings) as (a, b):
        assert isinstance(app_services(b).content.news._watch, CounterWatch)
        assert (await b.get("/api/news")).json()["total"] == 0  # B holds a snapshot now
        await upsert_feed_item(database=app_services(a).database, item={
            "documentId": "shared-1", "rss_item_id": "feed-item-1", "title": "Shared across workers",
            "summary": "Ingested once, served everywhere.", "sourceUrl": "https://devblogs.microsoft.com/dotnet/x",
            "rss_feed_url": "https://devblogs.microsoft.com/dotnet/feed/",
            "publishedDate": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)})
        page = (await b.get("/api/news")).json()
        assert page["total"] == 1 and page["news"][0]["title"] == "Shared across workers"


# --- WORKERS: several uvicorn processes with MongoDB, one with the embedded store ------------------

def _record_uvicorn(monkeypatch) -> dict:
    import uvicorn
    import uvicorn.supervisors

    calls: dict = {}

    def single(self, *args, **kwargs):
        calls["single"] = self.config
        self.started = True

    def supervise(self):  # uvicorn's multiprocess supervisor, recorded instead of spawning workers
        config = self.config
        calls.update(app=config.app, factory=config.factory, workers=config.workers, http=config.http,
                     port=config.port, loop=config.loop, sockets=len(self.sockets))
        self.processes = []

    monkeypatch.setattr(uvicorn.supervisors.Multiprocess, "run", supervise)
    monkeypatch.setattr(uvicorn.Server, "run", single)
    return calls


def test_workers_run_uvicorns_supervisor_with_mongodb(monkeypatch, tmp_path):
    import main
    from web.server_timeouts import TimedH11Protocol

    calls = _record_uvicorn(monkeypatch)
    monkeypatch.setenv("PORT", "8000")  # serve() writes HOST and PORT: monkeypatch restores them afterwards
    monkeypatch.setenv("HOST", "127.0.0.1")
    port = free_port()
    settings = quick_settings(tmp_path, mongodb_uri="mongodb://127.0.0.1:9/buddy", workers=3, port=port)
    assert main.serve(settings) == 0
    assert calls["app"] == "main:create_worker_app" and calls["factory"] is True and calls["workers"] == 3
    assert calls["http"] is TimedH11Protocol and calls["port"] == port and calls["sockets"] == 1
    import os

    assert os.environ["PORT"] == str(port)  # each worker's Settings() reads what this process resolved
    assert calls.get("loop") == "uvloop"  # requirements.txt installs it


def test_workers_without_mongodb_stay_one_process_and_say_so(monkeypatch, tmp_path, caplog):
    import main

    calls = _record_uvicorn(monkeypatch)
    with caplog.at_level("WARNING", logger="csharp_ai_buddy"):
        assert main.serve(quick_settings(tmp_path, workers=4)) == 0
    assert "single" in calls and "app" not in calls
    assert "WORKERS=4 ignored" in caplog.text and "MONGODB_URI" in caplog.text


def test_a_worker_builds_its_app_and_head_timeout_from_the_environment(monkeypatch, tmp_path):
    import main
    from web.server_timeouts import TimedH11Protocol

    monkeypatch.setattr(TimedH11Protocol, "head_timeout_seconds", TimedH11Protocol.head_timeout_seconds)
    monkeypatch.setenv("BODY_READ_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    app = main.create_worker_app()
    assert TimedH11Protocol.head_timeout_seconds == 3.0
    assert app.app.state.settings.body_read_timeout_seconds == 3.0
