"""Loopback helpers for tests: a free TCP port on 127.0.0.1 (light to import: stand-in subprocesses use it too)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; a test binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
