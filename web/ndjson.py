"""The `/api/chat` stream contract: typed run events → NDJSON lines (see CONVENTIONS, the stream contract)."""

from __future__ import annotations

import datetime as dt
import json
from typing import AsyncIterator

from services.agent.run import Completed, Failed, RunEvent, Started, TextDelta, ToolFinished, ToolStarted

NDJSON_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def event_line(event: RunEvent) -> str:
    if isinstance(event, TextDelta):
        return line({"type": "content", "content": event.text})
    if isinstance(event, Started):
        return line({"type": "metadata", "span_id": event.span_id, "timestamp": now_iso(),
                     "conversation_id": event.conversation_id})
    if isinstance(event, ToolStarted):
        return line({"type": "tool_call", "content": event.text, "name": event.name, "arguments": event.arguments})
    if isinstance(event, ToolFinished):
        return line({"type": "tool output", "content": event.text, "name": event.name,
                     "sources": [s.as_dict() for s in event.sources]})
    if isinstance(event, Completed):
        return line({"type": "complete", "span_id": event.span_id, "timestamp": now_iso()})
    if isinstance(event, Failed):
        return line({"type": "error", "content": event.message, "timestamp": now_iso()})
    raise TypeError(f"unknown run event {type(event).__name__}")


async def ndjson_stream(events: AsyncIterator[RunEvent]) -> AsyncIterator[str]:
    async for event in events:
        yield event_line(event)
