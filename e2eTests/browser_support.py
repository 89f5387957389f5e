"""Helpers for the browser tests: the real server as a process, a scripted stand-in site, Chromium launch.

The stand-in is a real HTTP server on 127.0.0.1 that serves the real static files and streams
scripted NDJSON split at awkward byte positions (mid-line, mid-character) and paused on gates the
test opens, so the page's incremental reading is checked deterministically.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from tests.utils.net import free_port

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "static"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]

# Offline everything: no keys, no remote tools; NuGet points at a closed loopback port so a stray
# call fails at once instead of reaching the internet.
SERVER_ENV = {
    "ENVIRONMENT": "development", "HOST": "127.0.0.1", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
    "OFFLINE_MODEL": "true", "MONGODB_URI": "", "PHOENIX_COLLECTOR_ENDPOINT": "", "ARIZE_SPACE_ID": "",
    "ARIZE_API_KEY": "", "MCP_SERVERS": "", "ENABLE_WEB_SEARCH": "false", "RATE_LIMIT_CHAT": "0",
    "RATE_LIMIT_FEEDBACK": "0", "NUGET_SEARCH_URLS": "http://127.0.0.1:9/query",
    "NUGET_REGISTRATION_URL": "http://127.0.0.1:9/registration/", "NUGET_FLAT_CONTAINER_URL": "http://127.0.0.1:9/flat/",
    "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
}


class LiveServer:
    """`python main.py` on a free port with its own DATA_DIR; `stop()` ends it so the data dir can be opened."""

    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        full_env = {**os.environ, **SERVER_ENV, "DATA_DIR": str(self.data_dir), "PORT": str(self.port), **env}
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "main.py"], cwd=REPO, env=full_env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> "LiveServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the server was not ready in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # graceful: the lifespan closes the store
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


# --- the scripted stand-in ----------------------------------------------------------------------

def ndjson(*objects: dict) -> bytes:
    return b"".join(json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in objects)


def split_bytes(data: bytes, every: int, at: tuple[int, ...] = ()) -> list[bytes]:
    """Chunks of `every` bytes, also cut at the given offsets (say, inside a multi-byte character)."""
    cuts = sorted({*range(every, len(data), every), *(a for a in at if 0 < a < len(data))})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def stream(*parts: bytes | list[bytes] | asyncio.Event, pause: float = 0.01) -> Handler:
    """A /api/chat reply writing each chunk (with a short pause) and waiting on each gate."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"})
        await response.prepare(request)
        for part in parts:
            if isinstance(part, asyncio.Event):
                await part.wait()
                continue
            for chunk in part if isinstance(part, list) else [part]:
                await response.write(chunk)
                await asyncio.sleep(pause)
        await response.write_eof()
        return response

    return handler


def status(code: int, body: dict, headers: dict | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=code, headers=headers)

    return handler


class StandInSite:
    """Serves index.html and /static from the repository; /api/chat and /api/feedback reply from queues."""

    def __init__(self, *, requires_key: bool = False) -> None:
        self.requires_key = requires_key
        self.chat_replies: collections.deque[Handler] = collections.deque()
        self.feedback_replies: collections.deque[Handler] = collections.deque()
        self.chat_bodies: list[dict] = []
        self.feedback_bodies: list[dict] = []
        self.gates: list[asyncio.Event] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def gate(self) -> asyncio.Event:
        event = asyncio.Event()
        self.gates.append(event)
        return event

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in os.listdir(STATIC):
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name)

    async def _config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"environment": "production" if self.requires_key else "development",
                                  "requires_key": self.requires_key})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.chat_bodies.append(await request.json())
        if not self.chat_replies:
            return web.json_response({"detail": "no scripted reply left"}, status=500)
        return await self.chat_replies.popleft()(request)

    async def _feedback(self, request: web.Request) -> web.StreamResponse:
        self.feedback_bodies.append(await request.json())
        if not self.feedback_replies:
            return web.json_response({"success": True, "message": "Thank you for your feedback!"})
        return await self.feedback_replies.popleft()(request)

    async def start(self) -> "StandInSite":
        app = web.Application()
        app.add_routes([web.get("/", self._index), web.get("/static/{name}", self._static),
                        web.get("/api/config", self._config), web.post("/api/chat", self._chat),
                        web.post("/api/feedback", self._feedback)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        for gate in self.gates:  # never leave a reply hanging on a gate
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()


def watch_console(page) -> list[str]:
    """Collect page errors and console errors (CSP violations show up here as 'Refused to ...')."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    return problems


def unexpected(problems: list[str]) -> list[str]:
    # The browser logs every non-2xx fetch as "Failed to load resource"; the tests provoke some on purpose.
    return [p for p in problems if "Failed to load resource" not in p]
