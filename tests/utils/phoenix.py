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

from tests.utils.net import free_port  # noqa: F401  (re-exported: tests import it from here)

START_TIMEOUT_SECONDS = 120


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
        """Start Phoenix and wait until it answers."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the Phoenix process without waiting for it (it takes 15-30 s to come up)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(PHOENIX_WORKING_DIR=str(self.working_dir), PHOENIX_PORT=str(self.port),
                   PHOENIX_GRPC_PORT=str(self.grpc_port), PHOENIX_HOST="127.0.0.1",
                   PHOENIX_ALLOW_EXTERNAL_RESOURCES="false", PHOENIX_TELEMETRY_ENABLED="false")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "phoenix.server.main", "serve"], env=env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.working_dir)
        log.close()

    def wait_ready(self) -> None:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Phoenix exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
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


class OutageGate:
    """A TCP relay on its own threads in front of a local server: `down()` refuses every connection
    and drops open ones, as a stopped server would; `up()` relays again on the same port.

    Simulates an outage of the real Phoenix without the 15-30 s a Phoenix restart takes. (Threads,
    not the event loop: the app's span flush blocks the loop while it exports.)
    """

    def __init__(self, target_port: int) -> None:
        import threading

        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            self._shut(connection)

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._shut(source)
            self._shut(target)

    @staticmethod
    def _shut(connection: socket.socket) -> None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()


async def eventually(check, *, timeout: float = 20.0, interval: float = 0.1):
    """Await `check()` until it returns something truthy; return that, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


_early: PhoenixServer | None = None


def launch_early(working_dir: Path) -> None:
    """Start the session's Phoenix in the background now (from tests/conftest.py once the collected
    tests are known to need it), so its start-up overlaps the tests that run before the first one that does."""
    global _early
    if _early is None:
        _early = PhoenixServer(working_dir)
        _early.launch()


def stop_early() -> None:
    """Stop a Phoenix launched early that no test picked up (say, the session was interrupted)."""
    global _early
    if _early is not None:
        _early.stop()
        _early = None


@pytest.fixture(scope="session")
def phoenix_server(tmp_path_factory):
    """One real Phoenix for the session; tests that stop it must start it again."""
    global _early
    server, _early = _early, None
    if server is None:
        server = PhoenixServer(tmp_path_factory.mktemp("phoenix"))
        server.launch()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def app_services(client):
    """The AppServices of the app behind a `running_app` client."""
    return client.app.state.services
