"""Shared fixtures: apps built by `create_app(test_settings)` on the embedded parts, no network."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.utils.tmp_root import prefer_ram_tmp_root  # noqa: E402

prefer_ram_tmp_root()  # before pytest makes its first temp dir


def _phoenix_namespace_as_in_production() -> None:
    """Make `import phoenix.otel` load only arize-phoenix-otel, as it does in production.

    requirements.txt ships arize-phoenix-otel, whose `phoenix` is a namespace package holding only
    `phoenix.otel`. The test venv also has the arize-phoenix *server* (requirements-dev.txt, run
    as a subprocess by tests/utils/phoenix.py), whose `phoenix/__init__.py` imports the whole
    server: ~13 s the first time an in-process app with a Phoenix endpoint starts. A bare
    namespace module for `phoenix` restores the production import (nothing in-process uses the server).
    """
    if "phoenix" in sys.modules:
        return
    found = importlib.util.find_spec("phoenix")  # finds, does not run phoenix/__init__.py
    if found is None or not found.submodule_search_locations:
        return
    namespace = types.ModuleType("phoenix")
    namespace.__path__ = list(found.submodule_search_locations)
    namespace.__spec__ = importlib.machinery.ModuleSpec("phoenix", None, is_package=True)
    namespace.__spec__.submodule_search_locations = namespace.__path__
    sys.modules["phoenix"] = namespace


_phoenix_namespace_as_in_production()

import pytest  # noqa: E402

from tests.utils.phoenix import phoenix_server  # noqa: E402, F401  (one real Phoenix per session)


def pytest_collection_finish(session):
    """Start Phoenix in the background right away when a selected test will need it."""
    if session.config.option.collectonly:
        return
    if any("phoenix_server" in getattr(item, "fixturenames", ()) for item in session.items):
        import tempfile
        from pathlib import Path

        from tests.utils.phoenix import launch_early

        factory = getattr(session.config, "_tmp_path_factory", None)  # what the tmp_path_factory fixture returns
        launch_early(factory.mktemp("phoenix") if factory else Path(tempfile.mkdtemp(prefix="phoenix-")))


def pytest_sessionfinish(session):
    from tests.utils.phoenix import stop_early

    stop_early()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Spare the interpreter's last garbage collections over the ~million objects the imports made (~2 s at exit).

    Nothing runs after this hook but interpreter shutdown; open resources were closed by the fixtures.
    """
    import gc

    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _close_shared_embedder():
    """Close the session's shared embedder (if a test loaded it) when the session ends."""
    yield
    app_helpers = sys.modules.get("tests.utils.app")  # not imported here: a session that built no app has none
    if app_helpers is not None:
        app_helpers.close_shared_embedder()


@pytest.fixture(scope="session")
def local_embedder():
    """The real local embedder, loaded once per session; `running_app`/`served_app` use it by default."""
    from tests.utils.app import shared_embedder

    return shared_embedder()


@pytest.fixture
def settings(tmp_path):
    from tests.utils.app import make_settings

    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def seeded_data_dir(request, tmp_path_factory, local_embedder):
    """A data dir whose knowledge base is already seeded: built once (see tests/utils/seeded.py), copied per test."""
    from tests.utils.seeded import seeded_data_dir as build

    return build(request.config, tmp_path_factory)


@pytest.fixture
def seeded_settings(tmp_path, seeded_data_dir):
    """Development settings on a private copy of the seeded data dir."""
    from tests.utils.app import copy_seeded_data_dir, make_settings

    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    return make_settings(tmp_path)
