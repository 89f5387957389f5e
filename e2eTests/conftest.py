"""Shared e2e fixtures: the real server (`python main.py`, uvicorn) on a free loopback port.

`live_server` (session scope) yields the base URL of one server started with embedded defaults
(development, offline model, a temp DATA_DIR, knowledge base and content seeded at startup).
`live_server_process` gives the process object itself (data dir, log tail) for tests that need it.
"""

from __future__ import annotations

import pytest

from e2eTests.browser_support import LiveServer


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory):
    """The running server; stopped (SIGINT, then kill) at the end of the session."""
    server = LiveServer(tmp_path_factory.mktemp("live-server"))
    try:
        server.wait_ready(timeout=300)
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(live_server_process) -> str:
    """Base URL of the running server, e.g. http://127.0.0.1:54321."""
    return live_server_process.base_url
