"""Helpers to build and talk to an app in-process."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager

from main import create_app
from services.core.settings import Settings

CHAT_QUESTION = "How do I call an OpenAI chat model from C# with Microsoft.Extensions.AI?"
CLOSED_URL = "http://127.0.0.1:9"


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Development settings on a fresh data dir (pre-seeded from a cached copy to save embedding time)."""
    values = dict(environment="development", data_dir=tmp_path / "data", mongodb_uri=None, openai_api_key=None,
                  openai_base_url=None, phoenix_collector_endpoint=None, arize_space_id=None, arize_api_key=None,
                  mcp_servers=[], rate_limit_chat=0, rate_limit_feedback=0, cors_origins=[],
                  # nothing listens on port 9: NuGet lookups fail fast and never leave the machine
                  nuget_search_urls=[CLOSED_URL + "/query"], nuget_registration_url=CLOSED_URL + "/registration/",
                  nuget_flat_container_url=CLOSED_URL + "/flat/")
    values.update(overrides)
    return Settings(_env_file=None, **values)


def copy_seeded_data_dir(target: Path, cache_root: Path) -> None:
    """Copy a data dir that already holds the seeded knowledge base (built once per session)."""
    if target.exists():
        return
    shutil.copytree(cache_root, target, ignore=shutil.ignore_patterns("embedded.lock"))


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def served_app(settings: Settings) -> AsyncIterator[tuple[str, object]]:
    """The app behind a real uvicorn server on a loopback port (for disconnects and real clients)."""
    import asyncio

    import uvicorn

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1800):
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
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
