"""Shared fixtures: apps built by `create_app(test_settings)` on the embedded parts, no network."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from tests.utils.app import make_settings
from tests.utils.phoenix import phoenix_server  # noqa: F401  (one real Phoenix per session)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def seeded_data_dir(tmp_path_factory):
    """A data dir whose knowledge base is already seeded: built once, copied per test."""
    import asyncio

    from services.lifespan import open_services

    root = tmp_path_factory.mktemp("seeded") / "data"

    async def build():
        async with open_services(make_settings(root.parent, data_dir=root)):
            pass

    asyncio.run(build())
    return root


@pytest.fixture
def seeded_settings(tmp_path, seeded_data_dir):
    """Development settings on a private copy of the seeded data dir."""
    from tests.utils.app import copy_seeded_data_dir

    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    return make_settings(tmp_path)
