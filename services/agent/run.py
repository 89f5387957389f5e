"""The one agent run: span, metrics, cancellation, tool events, stored turn; yields typed events.

`/api/chat` (NDJSON) and `/v1/chat/completions` (SSE/JSON) are thin adapters over `ChatRunner`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Union

from agents import Agent, Runner
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import services.storage.conversations as conv
from services.agent.context import ChatContext
from services.agent.tool_results import Source, ToolResult, from_output
from services.observability.tracing import span_id_hex

if TYPE_CHECKING:
    from nuget_search import NuGetClient
    from services.observability.metrics import Metrics
    from services.retrieval.knowledge_base import KnowledgeBase
    from services.storage.database import Database

log = logging.getLogger(__name__)
MAX_TURNS = 6
ERROR_TEXT = "Sorry, something went wrong while answering. Please try again in a moment."
_TOOL_TEXT = {
    "search_knowledge_base": "Searching the knowledge base for “{q}”…",
    "search_nuget_packages": "Looking up NuGet packages for “{q}”…",
    "get_nuget_package_details": "Reading NuGet package details for “{q}”…",
}


# ---------------------------------------------------------------- the events a run yields

@dataclass(frozen=True)
class Started:
    span_id: str
    conversation_id: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStarted:
    name: str
    arguments: str | None
    text: str  # for a person: "Searching the knowledge base for …"


@dataclass(frozen=True)
class ToolFinished:
    name: str
    sources: list[Source]
    error: str | None
    text: str  # for a person: "Found 3 results"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Completed:
    span_id: str
    answer: str
    usage: Usage


@dataclass(frozen=True)
class Failed:
    span_id: str
    message: str  # for a person, no internals


RunEvent = Union[Started, TextDelta, ToolStarted, ToolFinished, Completed, Failed]


@dataclass
class ChatTurn:
    """One question; `store` keeps it in a conversation (the NDJSON API), `/v1` is stateless."""

    message: str
    history: list[dict] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    conversation_id: str | None = None
    store: bool = True
    span_name: str = "chat"


# ---------------------------------------------------------------- helpers for the event texts

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


def tool_output_text(found: list[Source], error: str | None) -> str:
    if error:
        return "The lookup failed: " + error[:200]
    if not found:
        return "No matching results"
    return f"Found {len(found)} result{'s' if len(found) != 1 else ''}"


def _field(raw: object, key: str):
    """A field of an SDK run item's raw payload, which is a pydantic object or a plain dict."""
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def _text_delta(event) -> str | None:
    if event.type == "raw_response_event" and getattr(event.data, "type", "") == "response.output_text.delta":
        return event.data.delta or None
    return None


# ---------------------------------------------------------------- the runner

class ChatRunner:
    """Runs the agent for one turn; receives exactly what a run needs, not the app's container."""

    def __init__(self, *, agent: Agent, database: "Database", knowledge_base: "KnowledgeBase", tracer,
                 metrics: "Metrics", nuget: "NuGetClient | None", top_k: int, min_relevance: float,
                 record_content: bool) -> None:
        self.agent, self.database, self.knowledge_base = agent, database, knowledge_base
        self.tracer, self.metrics, self.nuget = tracer, metrics, nuget
        self.top_k, self.min_relevance, self.record_content = top_k, min_relevance, record_content

    async def run(self, turn: ChatTurn) -> AsyncIterator[RunEvent]:
        """Yield Started, then text/tool events, then Completed or Failed; cancellation propagates."""
        span = self.tracer.start_span(turn.span_name, attributes={"openinference.span.kind": "CHAIN"})
        span_id = span_id_hex(span)
        if self.record_content:
            span.set_attribute("input.value", turn.message)
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer: list[str] = []
        sources: dict[str, Source] = {}
        call_names: dict[str | None, str] = {}
        conversation_id, result = turn.conversation_id or "", None
        self.metrics.chat_started()
        try:
            session, agent_input = None, [*turn.history, {"role": "user", "content": turn.message}]
            if turn.store:
                conversation_id, session = await self._prepare_conversation(turn)
                span.set_attribute("session.id", conversation_id)
                agent_input = turn.message
            yield Started(span_id=span_id, conversation_id=conversation_id)
            context = ChatContext(knowledge_base=self.knowledge_base, top_k=self.top_k, filters=turn.filters,
                                  nuget=self.nuget, min_relevance=self.min_relevance)
            result = self._start(agent_input, context=context, span=span, session=session)
            async for event in result.stream_events():
                delta = _text_delta(event)
                if delta:
                    if not answer:
                        self.metrics.first_content(loop.time() - started)
                    answer.append(delta)
                    yield TextDelta(delta)
                elif event.type == "run_item_stream_event" and event.name == "tool_called":
                    raw = event.item.raw_item
                    name, arguments = _field(raw, "name") or "tool", _field(raw, "arguments")
                    call_names[_field(raw, "call_id")] = name
                    self.metrics.tool_called(name)
                    yield ToolStarted(name=name, arguments=arguments, text=tool_call_text(name, arguments))
                elif event.type == "run_item_stream_event" and event.name == "tool_output":
                    call_id = _field(event.item.raw_item, "call_id")
                    name = call_names.get(call_id, "")
                    found = context.tool_results.get(call_id) or from_output(name, event.item.output)
                    yield self._finished(name, found, sources)
            usage = result.context_wrapper.usage
            text = "".join(answer)
            if self.record_content:
                span.set_attribute("output.value", text)
            span.set_status(Status(StatusCode.OK))
            if turn.store:
                await self._save_turn(conversation_id, span_id, turn, text, list(sources.values()), "completed")
            self.metrics.chat_completed(loop.time() - started)
            yield Completed(span_id=span_id, answer=text, usage=Usage(usage.input_tokens, usage.output_tokens,
                                                                      usage.total_tokens))
        except asyncio.CancelledError:  # the client went away: stop the run, keep nothing half-done running
            if result is not None:
                result.cancel()
            span.set_status(Status(StatusCode.ERROR, "client disconnected"))
            self.metrics.chat_failed("cancelled")
            raise
        except Exception as exc:  # any failure becomes one Failed event with no internals
            log.exception("chat run failed (span %s)", span_id)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if result is not None:
                result.cancel()
            self.metrics.chat_failed(type(exc).__name__)
            yield Failed(span_id=span_id, message=ERROR_TEXT)
        finally:
            span.end()

    @staticmethod
    def _finished(name: str, found: ToolResult, seen: dict[str, Source]) -> ToolFinished:
        listed = found.sources
        for source in listed:
            seen.setdefault(source.url, source)
        return ToolFinished(name=name, sources=listed, error=found.error, text=tool_output_text(listed, found.error))

    def _start(self, agent_input, *, context: ChatContext, span, session):
        """Start the run inside `span`: the SDK's run task copies the context, so its spans nest under ours."""
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return Runner.run_streamed(self.agent, agent_input, context=context, session=session, max_turns=MAX_TURNS)
        finally:
            otel_context.detach(token)

    async def _prepare_conversation(self, turn: ChatTurn) -> tuple[str, object]:
        """Resolve the conversation id and its SDK session; a new one starts from the sent history."""
        conversation_id = turn.conversation_id or conv.new_conversation_id()
        session = conv.open_session(self.database, conversation_id)
        if turn.history and not await conv.conversation_exists(self.database, conversation_id):
            if not await session.get_items(limit=1):
                await session.add_items([{"role": h["role"], "content": h["content"]} for h in turn.history])
        return conversation_id, session

    async def _save_turn(self, conversation_id: str, span_id: str, turn: ChatTurn, answer: str,
                         sources: list[Source], status: str) -> None:
        try:
            await conv.record_turn(self.database, conversation_id=conversation_id, span_id=span_id,
                                   user=turn.message, assistant=answer, sources=[s.as_dict() for s in sources],
                                   filters=turn.filters, status=status)
        except Exception:  # the answer was delivered; a transcript write failure must not turn it into an error
            log.exception("could not store the conversation turn (conversation %s)", conversation_id)
