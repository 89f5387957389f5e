"""Model stand-ins shared by several test modules."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.testing import ScriptedModel


def hanging_scripted_model(seconds: float = 30) -> tuple["ScriptedModel", asyncio.Event, asyncio.Event]:
    """A `ScriptedModel` whose one streamed step waits `seconds` before its first event.

    Returns the model and two events: `started` (the step began) and `cancelled` (the step was
    cancelled while waiting, e.g. because the client hung up).
    """
    from agents.testing import ModelStep, ScriptedModel

    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow_stream(_call):
        started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield  # pragma: no cover

    return ScriptedModel([ModelStep.stream(slow_stream)]), started, cancelled
