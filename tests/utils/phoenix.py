"""A real Phoenix server for tests: `arize-phoenix` run as a subprocess on 127.0.0.1, offline, in a temp dir.

`phoenix_server` is session-scoped (start-up takes ~15 s); `PhoenixServer.stop()`/`start()` let a
test take it down and bring it back on the same ports with the same data.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PhoenixServer:
    def __init__(self, working_dir: Path) -> None:
        self.working_dir = working_dir
        self.port = free_port()
        self.grpc_port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = working_dir / "phoenix.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(PHOENIX_WORKING_DIR=str(self.working_dir), PHOENIX_PORT=str(self.port),
                   PHOENIX_GRPC_PORT=str(self.grpc_port), PHOENIX_HOST="127.0.0.1",
                   PHOENIX_ALLOW_EXTERNAL_RESOURCES="false", PHOENIX_TELEMETRY_ENABLED="false")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "phoenix.server.main", "serve"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.working_dir)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Phoenix exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Phoenix did not become ready in {START_TIMEOUT_SECONDS}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    # --- reading back through Phoenix's REST API ---

    async def get(self, path: str, **params) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            return await client.get(path, params=params)

    async def spans(self, project: str, **params) -> list[dict]:
        response = await self.get(f"/v1/projects/{project}/spans", limit=1000, **params)
        if response.status_code == 404:  # the project appears with its first span
            return []
        response.raise_for_status()
        return response.json()["data"]

    async def span_annotations(self, project: str, span_id: str) -> list[dict]:
        response = await self.get(f"/v1/projects/{project}/span_annotations", span_ids=[span_id], limit=100)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return response.json()["data"]


async def eventually(check, *, timeout: float = 20.0, interval: float = 0.25):
    """Await `check()` until it returns something truthy; return that, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture(scope="session")
def phoenix_server(tmp_path_factory):
    """One real Phoenix for the session; tests that stop it must start it again."""
    server = PhoenixServer(tmp_path_factory.mktemp("phoenix"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def app_services(client):
    """The AppServices of the app behind a `running_app` client."""
    return client.app.state.services
