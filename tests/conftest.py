"""Shared fixtures: apps built by `create_app(test_settings)` on the embedded parts, no network."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from tests.utils.app import make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)
