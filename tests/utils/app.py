"""Helpers to build and talk to an app in-process."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable

import httpx
from asgi_lifespan import LifespanManager

from main import create_app
from services.core.settings import Settings
from tests.utils.net import free_port  # noqa: F401  (re-exported: tests import it from here)

if TYPE_CHECKING:
    from agents.models.interface import Model
    from fastapi import FastAPI

    from services.retrieval.embeddings import Embedder, LocalEmbedder

CHAT_QUESTION = "How do I call an OpenAI chat model from C# with Microsoft.Extensions.AI?"
CLOSED_URL = "http://127.0.0.1:9"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Development settings on a fresh data dir (pre-seeded from a cached copy to save embedding time)."""
    values = dict(environment="development", data_dir=tmp_path / "data", mongodb_uri=None, openai_api_key=None,
                  openai_base_url=None, phoenix_collector_endpoint=None, arize_space_id=None, arize_api_key=None,
                  mcp_servers=[], rate_limit_chat=0, rate_limit_feedback=0, cors_origins=[],
                  # nothing listens on port 9: NuGet lookups fail fast and never leave the machine
                  nuget_search_urls=[CLOSED_URL + "/query"], nuget_registration_url=CLOSED_URL + "/registration/",
                  nuget_flat_container_url=CLOSED_URL + "/flat/",
                  # one line per delta: tests compare the stream's exact lines (tests/test_capacity.py covers merging)
                  stream_coalesce_ms=0)
    values.update(overrides)
    return Settings(_env_file=None, **values)


def quick_settings(tmp_path: Path, **overrides) -> Settings:
    """`make_settings` without seeding the knowledge base: for tests about the edges, not the answers."""
    return make_settings(tmp_path, **{"seed_on_startup": False, **overrides})


# --- one loaded embedding model for every in-process app --------------------------------------

_shared_embedder: "LocalEmbedder | None" = None
SHARED = object()  # "the session's shared embedder" (the default of the app helpers below)


def shared_embedder() -> "LocalEmbedder":
    """The local embedder every in-process app of this session uses (loaded on first use).

    The `local_embedder` session fixture in tests/conftest.py owns it and closes it at the end;
    apps never close an embedder they are given. A test that breaks its embedder must pass its own.
    """
    global _shared_embedder
    if _shared_embedder is None:
        from services.retrieval.embeddings import LocalEmbedder

        _shared_embedder = LocalEmbedder()
    return _shared_embedder


def close_shared_embedder() -> None:
    global _shared_embedder
    if _shared_embedder is not None:
        _shared_embedder.close()
        _shared_embedder = None


def no_retry_waits(monkeypatch) -> None:
    """OpenAI clients still retry as configured, but without the SDK's backoff waits (0.5 s, 1 s, 2 s...)."""
    from openai._base_client import BaseClient

    monkeypatch.setattr(BaseClient, "_calculate_retry_timeout", lambda self, *args, **kwargs: 0.0)


class FakeClock:
    """A monotonic clock the test moves by hand: `create_app(..., clock=FakeClock())`, then `advance(s)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def build_app(settings: Settings, *, model: "Model | None" = None, embedder: "Embedder | None | object" = SHARED,
              clock: Callable[[], float] | None = None, database=None) -> "FastAPI":
    """`create_app` as the tests use it: the shared local embedder unless told otherwise.

    `embedder=None` lets the app create (and close) its own, as in production; with OpenAI-protocol
    embeddings configured (`Settings.embedding_endpoint`) the app's own is used too.
    """
    if embedder is SHARED:
        uses_openai = settings.embedding_endpoint is not None  # OpenAI-protocol embeddings are configured
        embedder = None if uses_openai else shared_embedder()
    return create_app(settings, model=model, embedder=embedder, clock=clock, database=database)  # type: ignore[arg-type]


def copy_seeded_data_dir(target: Path, cache_root: Path) -> None:
    """Copy a data dir that already holds the seeded knowledge base (built once per session)."""
    if target.exists():
        return
    shutil.copytree(cache_root, target, ignore=shutil.ignore_patterns("embedded.lock"))


@contextlib.asynccontextmanager
async def running_app(settings: Settings, **app_options) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process over ASGI; `app_options` (model, embedder, clock) go to `build_app`."""
    app = build_app(settings, **app_options)
    async with LifespanManager(app, startup_timeout=180, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            client.app = app  # type: ignore[attr-defined]  # the FastAPI instance (manager.app may be wrapped)
            yield client


async def chat_lines(client: httpx.AsyncClient, payload: dict) -> tuple[int, list[dict]]:
    """POST /api/chat and parse every NDJSON line."""
    async with client.stream("POST", "/api/chat", json=payload) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, [response.json()]
        lines = [json.loads(raw) async for raw in response.aiter_lines() if raw.strip()]
    return 200, lines


def answer_text(lines: list[dict]) -> str:
    return "".join(line["content"] for line in lines if line["type"] == "content")


@contextlib.asynccontextmanager
async def served_app(settings: Settings, **app_options) -> AsyncIterator[tuple[str, object]]:
    """The app behind a real uvicorn server on a loopback port (for disconnects and real clients)."""
    import asyncio

    import uvicorn

    app = build_app(settings, **app_options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(18000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def agent_run_tasks() -> list:
    """Live tasks started by the Agents SDK (each streamed run is one; matched by the code they run)."""
    import asyncio
    import os

    import agents

    package = os.path.dirname(agents.__file__) + os.sep
    return [t for t in asyncio.all_tasks() if not t.done()
            and getattr(getattr(t.get_coro(), "cr_code", None), "co_filename", "").startswith(package)]


async def assert_no_run_left() -> None:
    """Wait briefly for every SDK run task to finish; fail naming those still alive."""
    import asyncio

    for _ in range(50):
        if not agent_run_tasks():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"agent runs still alive: {agent_run_tasks()}")


@contextlib.asynccontextmanager
async def serve_aiohttp(app) -> AsyncIterator[str]:
    """Serve an aiohttp stand-in app on a free loopback port; yields its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
