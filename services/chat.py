"""One chat turn as an NDJSON stream: metadata, content deltas, tool lines, then complete or error."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator

from agents import Runner
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from services import conversations as conv
from services.agent import ChatContext
from services.app_services import AppServices
from services.grounded_answer import parse_tool_output
from services.tracing import span_id_hex

log = logging.getLogger(__name__)
MAX_TURNS = 6
ERROR_TEXT = "Sorry, something went wrong while answering. Please try again in a moment."
_TOOL_TEXT = {
    "search_knowledge_base": "Searching the knowledge base for “{q}”…",
    "search_nuget_packages": "Looking up NuGet packages for “{q}”…",
    "get_nuget_package_details": "Reading NuGet package details for “{q}”…",
}


@dataclass
class ChatTurn:
    message: str
    history: list[dict] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    conversation_id: str | None = None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def item_field(raw: object, key: str):
    """A field of an SDK run item's raw payload, which is a pydantic object or a plain dict."""
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def text_delta(event) -> str | None:
    """The answer text an SDK stream event carries, if it is a non-empty output-text delta."""
    if event.type == "raw_response_event" and getattr(event.data, "type", "") == "response.output_text.delta":
        return event.data.delta or None
    return None


def tool_call_text(name: str, arguments: str | None) -> str:
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        args = {}
    query = next((str(v) for v in args.values() if isinstance(v, str)), "") if isinstance(args, dict) else ""
    template = _TOOL_TEXT.get(name)
    if template:
        return template.format(q=query[:120])
    return f"Consulting {name.replace('_', ' ')}" + (f" for “{query[:120]}”…" if query else "…")


def tool_output_text(found: list[dict], error: str | None) -> str:
    if error:
        return "The lookup failed: " + error[:200]
    if not found:
        return "No matching results"
    return f"Found {len(found)} result{'s' if len(found) != 1 else ''}"


def sources_from_results(results: list[dict]) -> list[dict]:
    """{title, url, score} per distinct URL, in the order the tool returned them, with the best score."""
    by_url: dict[str, dict] = {}
    for result in results:
        score = result.get("score")
        score = float(score) if isinstance(score, (int, float)) else None
        known = by_url.get(result["url"])
        if known is None:
            by_url[result["url"]] = {"title": result["title"], "url": result["url"], "score": score}
        elif score is not None and (known["score"] is None or score > known["score"]):
            known["score"] = score
    sources = list(by_url.values())
    return sources


def start_run(services: AppServices, agent_input, *, context: ChatContext, span, session=None):
    """Start the agent run inside `span`: the SDK's run task copies the context, so its spans nest under ours."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        return Runner.run_streamed(services.agent, agent_input, context=context, session=session, max_turns=MAX_TURNS)
    finally:
        otel_context.detach(token)


async def _prepare_conversation(services: AppServices, turn: ChatTurn) -> tuple[str, object]:
    """Resolve the conversation id and its SDK session; a new one starts from the sent history."""
    database = services.database
    conversation_id = turn.conversation_id or conv.new_conversation_id()
    session = conv.open_session(database, conversation_id)
    if turn.history and not await conv.conversation_exists(database, conversation_id):
        if not await session.get_items(limit=1):
            await session.add_items([{"role": h["role"], "content": h["content"]} for h in turn.history])
    return conversation_id, session


async def stream_chat(*, services: AppServices, turn: ChatTurn) -> AsyncIterator[str]:
    """Run the agent for one turn and yield NDJSON lines; never raises to the caller after starting."""
    tracer = services.tracing.tracer
    metrics = services.metrics
    span = tracer.start_span("chat", attributes={"openinference.span.kind": "CHAIN"})
    span_id = span_id_hex(span)
    if services.settings.trace_include_content:
        span.set_attribute("input.value", turn.message)
    conversation_id = turn.conversation_id or ""
    answer: list[str] = []
    sources: list[dict] = []
    result = None
    call_names: dict[str | None, str] = {}
    status = "failed"
    if metrics:
        metrics.chat_started()
    started = asyncio.get_running_loop().time()
    try:
        conversation_id, session = await _prepare_conversation(services, turn)
        span.set_attribute("session.id", conversation_id)
        yield line({"type": "metadata", "span_id": span_id, "timestamp": now_iso(), "conversation_id": conversation_id})
        context = ChatContext(knowledge_base=services.knowledge_base, settings=services.settings,
                              filters=turn.filters, nuget=services.nuget)
        result = start_run(services, turn.message, context=context, span=span, session=session)
        async for event in result.stream_events():
            delta = text_delta(event)
            if delta:
                if metrics and not answer:
                    metrics.first_content(asyncio.get_running_loop().time() - started)
                answer.append(delta)
                yield line({"type": "content", "content": delta})
            elif event.type == "run_item_stream_event":
                if event.name == "tool_called":
                    raw = event.item.raw_item
                    name = item_field(raw, "name") or "tool"
                    arguments = item_field(raw, "arguments")
                    call_names[item_field(raw, "call_id")] = name
                    if metrics:
                        metrics.tool_called(name)
                    yield line({"type": "tool_call", "content": tool_call_text(name, arguments), "name": name,
                                "arguments": arguments})
                elif event.name == "tool_output":
                    name = call_names.get(item_field(event.item.raw_item, "call_id"), "")
                    parsed = parse_tool_output(name, event.item.output)
                    found = sources_from_results(parsed.results)
                    sources.extend(s for s in found if s["url"] not in {x["url"] for x in sources})
                    summary = tool_output_text(found, parsed.error)
                    yield line({"type": "tool output", "content": summary, "name": name, "sources": found})
        status = "completed"
        if services.settings.trace_include_content:
            span.set_attribute("output.value", "".join(answer))
        span.set_status(Status(StatusCode.OK))
        await _save_turn(services, conversation_id, span_id, turn, answer, sources, status)
        if metrics:
            metrics.chat_completed(asyncio.get_running_loop().time() - started)
        yield line({"type": "complete", "span_id": span_id, "timestamp": now_iso()})
    except asyncio.CancelledError:  # the client went away: stop the run, keep nothing half-done running
        status = "cancelled"
        if result is not None:
            result.cancel()
        span.set_status(Status(StatusCode.ERROR, "client disconnected"))
        if metrics:
            metrics.chat_failed("cancelled")
        raise
    except Exception as exc:  # any failure becomes one error line with no internals
        log.exception("chat stream failed (span %s)", span_id)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        if result is not None:
            result.cancel()
        if metrics:
            metrics.chat_failed(type(exc).__name__)
        yield line({"type": "error", "content": ERROR_TEXT, "timestamp": now_iso()})
    finally:
        span.end()


async def _save_turn(services: AppServices, conversation_id: str, span_id: str, turn: ChatTurn,
                     answer: list[str], sources: list[dict], status: str) -> None:
    try:
        await conv.record_turn(services.database, conversation_id=conversation_id, span_id=span_id,
                               user=turn.message, assistant="".join(answer), sources=sources,
                               filters=turn.filters, status=status)
    except Exception:  # the answer was delivered; a transcript write failure must not turn it into an error
        log.exception("could not store the conversation turn (conversation %s)", conversation_id)
