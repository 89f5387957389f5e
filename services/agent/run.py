"""The one agent run: span, metrics, cancellation, deadline, keepalives, tool events, token usage, stored
turn; yields typed events (`services.agent.events`).

`/api/chat` (NDJSON) and `/v1/chat/completions` (SSE/JSON) are thin adapters over `ChatRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Callable

from agents import Agent, RunConfig, Runner
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import services.storage.conversations as conv
from services.agent.context import ChatContext
from services.agent.context_budget import budget_filter
from services.agent.events import (  # noqa: F401  (re-exported: the adapters import the events from here)
    ChatTurn, Completed, Failed, KeepAlive, RunEvent, Started, TextDelta, ToolFinished, ToolStarted, Usage,
)
from services.agent.failures import ERROR_TEXT, EmptyReply, RunDeadlineExceeded, classify  # noqa: F401
from services.agent.stream_items import StreamReader, tool_call_text, tool_output_text  # noqa: F401
from services.agent.tool_results import Source
from services.agent.turn_session import TurnSession
from services.observability.tracing import span_id_hex

if TYPE_CHECKING:
    from nuget_search import NuGetClient
    from services.core.token_budget import TokenBudget
    from services.observability.metrics import Metrics
    from services.retrieval.knowledge_base import KnowledgeBase
    from services.storage.database import Database

log = logging.getLogger(__name__)
MAX_TURNS = 6
_SILENCE = object()  # queued into the SDK's event queue by `ChatRunner._events`' timer: keepalive due
_DEADLINE = object()  # ...: the turn's deadline has passed


@dataclass(frozen=True)
class RunLimits:
    """Per-turn limits (from `Settings`): total deadline, keepalive interval, context and session bounds."""

    deadline_seconds: float = 90.0
    keepalive_seconds: float = 10.0
    context_budget_tokens: int = 12_000
    session_max_items: int = 100
    model_label: str = "model"  # the `model` label of chat_tokens_total

    @classmethod
    def from_settings(cls, settings, *, model_label: str) -> "RunLimits":
        return cls(deadline_seconds=settings.chat_deadline_seconds, keepalive_seconds=settings.keepalive_seconds,
                   context_budget_tokens=settings.context_budget_tokens, session_max_items=settings.session_max_items,
                   model_label=model_label)


class ChatRunner:
    """Runs the agent for one turn; receives exactly what a run needs, not the app's container."""

    def __init__(self, *, agent: Agent, database: "Database", knowledge_base: "KnowledgeBase", tracer,
                 metrics: "Metrics", nuget: "NuGetClient | None", top_k: int, min_relevance: float,
                 record_content: bool, limits: RunLimits | None = None, budget: "TokenBudget | None" = None,
                 sdk_spans: Callable[[], bool] | None = None) -> None:
        self.agent, self.database, self.knowledge_base = agent, database, knowledge_base
        self.tracer, self.metrics, self.nuget = tracer, metrics, nuget
        self.top_k, self.min_relevance, self.record_content = top_k, min_relevance, record_content
        self.limits = limits or RunLimits()
        self.budget = budget
        self.run_config = RunConfig(call_model_input_filter=budget_filter(self.limits.context_budget_tokens,
                                                                             self.limits.model_label))
        # `sdk_spans()` False (no span processor attached): the SDK's spans would be built and dropped
        self.sdk_spans = sdk_spans
        self._untraced_config = dataclasses.replace(self.run_config, tracing_disabled=True)

    def check_budget(self, identity: str | None) -> None:
        """Refuse (429 `TokenBudgetSpent`) before a run when `identity` has spent today's token budget."""
        if self.budget is None:
            return
        try:
            self.budget.check(identity)
        except Exception:
            self.metrics.rate_limited.labels(limit="token_budget").inc()
            raise

    async def run(self, turn: ChatTurn) -> AsyncIterator[RunEvent]:
        """Yield Started, then text/tool/keepalive events, then Completed or Failed; cancellation propagates."""
        span = self.tracer.start_span(turn.span_name, attributes={"openinference.span.kind": "CHAIN"})
        span_id = span_id_hex(span)
        if self.record_content:
            span.set_attribute("input.value", turn.message)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.limits.deadline_seconds
        conversation_id, result, session = turn.conversation_id or "", None, None
        context = ChatContext(knowledge_base=self.knowledge_base, top_k=self.top_k, filters=turn.filters,
                              nuget=self.nuget, min_relevance=self.min_relevance)
        reader = StreamReader(context)
        self.metrics.chat_started()
        try:
            agent_input = [*turn.history, {"role": "user", "content": turn.message}]
            if turn.store:
                conversation_id, stored = await self._prepare_conversation(turn)
                # a conversation id made just now has nothing stored yet: no read of an empty session
                session = TurnSession(stored, max_items=self.limits.session_max_items,
                                      empty=not turn.conversation_id and not turn.history)
                span.set_attribute("session.id", conversation_id)
                agent_input = turn.message
            yield Started(span_id=span_id, conversation_id=conversation_id)
            result = self._start(agent_input, context=context, span=span, session=session)
            async with contextlib.aclosing(self._events(result, deadline)) as events:
                async for event in events:
                    if event is None:
                        yield KeepAlive()
                        continue
                    for out in reader.read(event):
                        if isinstance(out, TextDelta) and len(reader.answer) == 1:
                            self.metrics.first_content(loop.time() - started)
                        elif isinstance(out, ToolStarted):
                            self.metrics.tool_called(out.name)
                        yield out
            text = "".join(reader.answer)
            if not text and isinstance(result.final_output, str) and result.final_output.strip():
                text = result.final_output  # a model that answered without streaming deltas
                yield TextDelta(text)
            if not text and not reader.tool_outputs:
                raise EmptyReply("the run completed with no text and no tool output")
            usage = self._usage(result)
            if session is not None:  # unstored memory fails the turn: the next question would silently lack it
                await session.commit()
            if self.record_content:
                span.set_attribute("output.value", text)
            span.set_status(Status(StatusCode.OK))
            if turn.store:
                await self._save_turn(conversation_id, span_id, turn, text, list(reader.sources.values()),
                                      "completed", usage=usage)
            self.metrics.chat_completed(loop.time() - started)
            yield Completed(span_id=span_id, answer=text, usage=usage)
        except asyncio.CancelledError:  # the client went away: stop the run, keep nothing half-done running
            if result is not None:
                result.cancel()
            span.set_status(Status(StatusCode.ERROR, "client disconnected"))
            self.metrics.chat_failed("cancelled")
            raise
        except Exception as exc:  # any failure becomes one Failed event with no internals
            failure = classify(exc)
            if failure.kind == "error":
                log.exception("chat run failed (span %s)", span_id)
            else:  # an upstream condition, not our bug: one line
                log.warning("chat run failed (span %s): %s: %s: %.300s", span_id, failure.kind,
                            type(exc).__name__, exc)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if result is not None:
                result.cancel()
            self.metrics.chat_failed(type(exc).__name__)
            if turn.store and conversation_id:  # the transcript says the turn failed; the session is untouched
                await self._save_turn(conversation_id, span_id, turn, "".join(reader.answer),
                                      list(reader.sources.values()), "failed", usage=self._usage(result),
                                      error=failure.message)
            yield Failed(span_id=span_id, message=failure.message, kind=failure.kind,
                         retry_after=failure.retry_after)
        finally:
            if result is not None and not result.is_complete:  # closed at a yield (the /v1 adapter, a hang-up)
                result.cancel()
            self._charge(turn, result)
            span.end()

    async def _events(self, result, deadline: float) -> AsyncIterator[object | None]:
        """The SDK's stream events, None for "nothing for `keepalive_seconds`"; raises RunDeadlineExceeded.

        The deadline is checked here rather than with `asyncio.timeout` around the loop: a timeout that
        spans this generator's yields would cancel whatever the consumer is doing at that moment, and
        one around a single read would cancel the SDK's stream (its queue read cancels the run).
        Instead one timer per keepalive period (not per event) puts a marker into the run's event
        queue when the stream has been silent for `keepalive_seconds` or the deadline has passed; the
        events themselves are read with a plain `async for`. Racing each read against a timeout cost
        a task, a waiter and a timer per relayed event, ~25 us each (benchmarks/README.md "Capacity").
        """
        queue = getattr(result, "_event_queue", None)
        if not isinstance(queue, asyncio.Queue):  # an SDK without the queue: race each read (the slow way)
            async for event in self._events_polled(result, deadline):
                yield event
            return
        loop = asyncio.get_running_loop()
        keepalive = self.limits.keepalive_seconds
        stream = result.stream_events()
        last = loop.time()  # when the last item came out of the stream
        marked_at: float | None = None  # `last` when a keepalive marker was queued and not read yet
        timer: asyncio.TimerHandle | None = None

        def tick() -> None:
            nonlocal timer, marked_at
            now = loop.time()
            if now >= deadline:
                timer = None
                queue.put_nowait(_DEADLINE)
                return
            due = last + keepalive
            if marked_at is None and now + 0.001 >= due:
                marked_at = last
                queue.put_nowait(_SILENCE)
                due = now + keepalive
            elif marked_at is not None:
                due = now + keepalive
            timer = loop.call_at(min(due, deadline), tick)

        timer = loop.call_at(min(last + keepalive, deadline), tick)
        ended = False
        try:
            async for item in stream:
                if item is _SILENCE:
                    fresh = marked_at == last  # nothing came out between the marker and now
                    marked_at = None
                    if not fresh:
                        continue
                    last = loop.time()
                    if last < deadline:
                        yield None
                    continue
                if item is _DEADLINE:
                    raise RunDeadlineExceeded(f"the turn passed its {self.limits.deadline_seconds:g} s deadline")
                last = loop.time()
                yield item
                if loop.time() >= deadline:
                    raise RunDeadlineExceeded(f"the turn passed its {self.limits.deadline_seconds:g} s deadline")
            ended = True
        finally:
            if timer is not None:
                timer.cancel()
            if not ended and not result.is_complete:  # deadline, failure or close: stop the run, do not await it
                result.cancel()
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _events_polled(self, result, deadline: float) -> AsyncIterator[object | None]:
        """`_events` for a stream whose queue cannot be marked: each read raced against the keepalive timeout."""
        loop = asyncio.get_running_loop()
        stream = result.stream_events()

        async def next_event():
            return await anext(stream)

        step: asyncio.Task | None = None
        try:
            while True:
                if step is None:
                    step = asyncio.ensure_future(next_event())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise RunDeadlineExceeded(f"the turn passed its {self.limits.deadline_seconds:g} s deadline")
                done, _ = await asyncio.wait({step}, timeout=min(self.limits.keepalive_seconds, remaining))
                if not done:
                    if loop.time() < deadline:
                        yield None
                    continue
                finished, step = step, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return
                yield event
        finally:
            if step is not None:
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
            with contextlib.suppress(Exception):
                await stream.aclose()

    def _usage(self, result) -> Usage:
        usage = getattr(getattr(result, "context_wrapper", None), "usage", None)
        if usage is None:
            return Usage()
        return Usage(usage.input_tokens, usage.output_tokens, usage.total_tokens)

    def _charge(self, turn: ChatTurn, result) -> None:
        """Count the turn's tokens (completed, failed or cancelled: they were spent) in /metrics and the budget."""
        if result is None:
            return
        usage = self._usage(result)
        self.metrics.tokens_used(self.limits.model_label, input_tokens=usage.input_tokens,
                                 output_tokens=usage.output_tokens)
        if self.budget is not None:
            self.budget.charge(turn.identity, usage.total_tokens or usage.input_tokens + usage.output_tokens)

    def _start(self, agent_input, *, context: ChatContext, span, session):
        """Start the run inside `span`: the SDK's run task copies the context, so its spans nest under ours."""
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            traced = self.sdk_spans is None or self.sdk_spans()
            return Runner.run_streamed(self.agent, agent_input, context=context, session=session, max_turns=MAX_TURNS,
                                       run_config=self.run_config if traced else self._untraced_config)
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
                         sources: list[Source], status: str, *, usage: Usage, error: str | None = None) -> None:
        try:
            await conv.record_turn(self.database, conversation_id=conversation_id, span_id=span_id,
                                   user=turn.message, assistant=answer, sources=[s.as_dict() for s in sources],
                                   filters=turn.filters, status=status, owner=turn.owner, usage=usage.as_dict(),
                                   error=error)
        except Exception:  # the answer was delivered; a transcript write failure must not turn it into an error
            log.exception("could not store the conversation turn (conversation %s)", conversation_id)
