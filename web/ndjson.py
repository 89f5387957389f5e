"""The `/api/chat` stream contract: typed run events → NDJSON lines (see CONVENTIONS, the stream contract)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import AsyncIterator

from services.agent.run import Completed, Failed, KeepAlive, RunEvent, Started, TextDelta, ToolFinished, ToolStarted

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
    if isinstance(event, KeepAlive):  # the website ignores unknown types (static/app.js: `default: break`)
        return line({"type": "keepalive"})
    raise TypeError(f"unknown run event {type(event).__name__}")


async def ndjson_stream(events: AsyncIterator[RunEvent], *, coalesce_seconds: float = 0.0) -> AsyncIterator[str]:
    """NDJSON lines; text deltas closer together than `coalesce_seconds` share one line (see `coalesce_text`)."""
    async for event in coalesce_text(events, window=coalesce_seconds) if coalesce_seconds > 0 else events:
        yield event_line(event)


async def coalesce_text(events: AsyncIterator[RunEvent], *, window: float) -> AsyncIterator[RunEvent]:
    """The same events, with text deltas that arrive within `window` s of the last one sent merged into one.

    A delta after a quiet `window` goes out at once (the first one always does); one that follows
    sooner waits until `window` after the last send, taking along whatever else arrived meanwhile.
    Each delta relayed costs a JSON line, a trip through the ASGI middlewares and a socket write
    (benchmarks/bench_capacity.py), so a fast model's tokens are sent ~1/window times a second.
    Only while something waits is the next event read in a task (a plain await cannot time out
    without cancelling the run); the rest of the time this adds one `await` per event.
    """
    loop = asyncio.get_running_loop()
    source = aiter(events)
    waiting: list[str] = []  # text not yet sent
    sent_at = -window
    step: asyncio.Future | None = None  # the pending read of the next event, while text waits
    try:
        while True:
            if waiting:
                if step is None:
                    step = asyncio.ensure_future(anext(source))
                done, _ = await asyncio.wait({step}, timeout=max(0.0, sent_at + window - loop.time()))
                if not done:  # the window has passed: send what waits, keep reading
                    yield TextDelta("".join(waiting))
                    waiting.clear()
                    sent_at = loop.time()
                    continue
                finished, step = step, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    break
            else:
                try:
                    if step is not None:  # a read started while text waited is still on its way
                        finished, step = step, None
                        event = await finished
                    else:
                        event = await anext(source)
                except StopAsyncIteration:
                    break
            if isinstance(event, TextDelta):
                if waiting or loop.time() - sent_at < window:
                    waiting.append(event.text)
                    continue
                sent_at = loop.time()
                yield event
                continue
            if waiting:  # text first, then the tool/keepalive/final event, in the order they came
                yield TextDelta("".join(waiting))
                waiting.clear()
            yield event
        if waiting:
            yield TextDelta("".join(waiting))
    finally:
        if step is not None:
            step.cancel()
            with contextlib.suppress(BaseException):
                await step
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
