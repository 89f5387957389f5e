"""Shared e2e fixtures: the real server (`python main.py`, uvicorn) on a free loopback port.

`live_server` (session scope) yields the base URL of one server started with embedded defaults
(development, offline model, a temp DATA_DIR holding a copy of the session's seeded data dir, so
its start-up seeding finds everything up to date instead of embedding the knowledge base again).
`live_server_process` gives the process object itself (data dir, log tail) for tests that need it.
`dev_server` is a private development server a test may stop to read its store; `prod_server` runs
in production mode with one enabled and one disabled magic key.

A server takes 10-15 s to start (imports, the embedding model, the knowledge base), so the ones the
selected tests need are launched in the background as soon as the seeded data dir exists, and their
start-up overlaps the in-process tests; each fixture then only waits until its server answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from e2eTests.browser_support import LiveServer
from tests.utils.tmp_root import prefer_ram_tmp_root

prefer_ram_tmp_root()  # as tests/conftest.py does, for runs of e2eTests alone

PROD_KEYS = {"e2e-valid-key": True, "e2e-disabled-key": False}  # key -> enabled
_early: dict[str, LiveServer] = {}


def _launch(name: str, root: Path, seeded: Path | None) -> LiveServer:
    from tests.utils.app import copy_seeded_data_dir

    if name == "prod":  # no knowledge base needed: the test is about the key flow
        asyncio.run(_register_prod_keys(root))
        return LiveServer(root, ENVIRONMENT="production", SEED_ON_STARTUP="false")
    copy_seeded_data_dir(root / "data", seeded)
    return LiveServer(root)


async def _register_prod_keys(root: Path) -> None:
    from services.storage.database import USERS, open_database
    from tests.utils.app import make_settings

    database = await open_database(make_settings(root, data_dir=root / "data"))
    try:
        for key, enabled in PROD_KEYS.items():
            await database[USERS].insert_one({"_id": key} if enabled else {"_id": key, "is_enabled": False})
    finally:
        await database.close()


_FIXTURES = {"live": {"live_server", "live_server_process"}, "dev": {"dev_server"}, "prod": {"prod_server"}}


def pytest_collection_finish(session):
    """Launch the servers the selected tests need once the seeded data dir is built (without waiting)."""
    if session.config.option.collectonly:
        return
    wanted = {name for item in session.items for name, fixtures in _FIXTURES.items()
              if fixtures & set(getattr(item, "fixturenames", ()))}
    if not wanted:
        return
    factory = session.config._tmp_path_factory  # what the tmp_path_factory fixture returns

    def launch_all(seeded: Path) -> None:
        for name in sorted(wanted):
            if name not in _early:
                _early[name] = _launch(name, factory.mktemp(f"{name}-server"), seeded)

    from tests.utils.seeded import when_built

    when_built(launch_all)


def pytest_sessionfinish(session):
    for server in _early.values():  # launched, never picked up (say, the session was interrupted)
        server.stop()
    _early.clear()


def _server(name: str, tmp_path_factory, seeded: Path | None) -> LiveServer:
    server = _early.pop(name, None) or _launch(name, tmp_path_factory.mktemp(f"{name}-server"), seeded)
    try:
        server.wait_ready(timeout=300)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def seeded_data_dir(request, tmp_path_factory):
    """The same seeded data dir as tests/conftest.py's (one per process, see tests/utils/seeded.py)."""
    from tests.utils.app import close_shared_embedder
    from tests.utils.seeded import seeded_data_dir as build

    yield build(request.config, tmp_path_factory)
    close_shared_embedder()


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory, seeded_data_dir):
    """The running server; stopped (SIGINT, then kill) at the end of the session."""
    server = _server("live", tmp_path_factory, seeded_data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(live_server_process) -> str:
    """Base URL of the running server, e.g. http://127.0.0.1:54321."""
    return live_server_process.base_url


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory, seeded_data_dir):
    """A private real server (development mode) that the feedback test may stop to read its store.

    It starts from a copy of the seeded data dir, so the knowledge base is not seeded again.
    """
    server = _server("dev", tmp_path_factory, seeded_data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prod_server(tmp_path_factory):
    """The real app in production mode, with one enabled and one disabled magic key registered."""
    server = _server("prod", tmp_path_factory, None)
    yield server
    server.stop()
