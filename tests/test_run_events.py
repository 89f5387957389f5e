"""`ChatRunner._events`: keepalives while the model is silent and the deadline, without a task per relayed event.

The SDK's streamed result is faked here (its event queue and `stream_events`); the real one is driven end
to end by tests/test_model_path.py (a stalled stream's keepalives and deadline) and tests/test_chat*.py.
"""

from __future__ import annotations

import asyncio

import pytest

from services.agent.failures import RunDeadlineExceeded
from services.agent.run import ChatRunner, RunLimits

END = object()


class FakeResult:
    """What `_events` uses of `RunResultStreaming`: an event queue read by `stream_events`, `cancel`, `is_complete`."""

    def __init__(self, *, with_queue: bool = True) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        if with_queue:
            self._event_queue = self.queue
        self.is_complete = False
        self.cancelled = False

    async def stream_events(self):
        while True:
            try:
                item = await self.queue.get()
            except asyncio.CancelledError:  # as the SDK does: a cancelled read cancels the run
                self.cancel()
                raise
            if item is END:
                self.is_complete = True
                return
            yield item

    def cancel(self) -> None:
        self.cancelled = self.is_complete = True
        self.queue.put_nowait(END)


def runner(keepalive: float, deadline: float) -> ChatRunner:
    runner = ChatRunner.__new__(ChatRunner)  # only `limits` is used by `_events`
    runner.limits = RunLimits(keepalive_seconds=keepalive, deadline_seconds=deadline)
    return runner


async def collect(result: FakeResult, keepalive: float, deadline_in: float, script) -> list:
    loop = asyncio.get_running_loop()
    out: list = []

    async def feed():
        for delay, item in script:
            await asyncio.sleep(delay)
            result.queue.put_nowait(item)

    feeder = asyncio.create_task(feed())
    try:
        async for event in runner(keepalive, deadline_in)._events(result, loop.time() + deadline_in):
            out.append(event)
    except RunDeadlineExceeded:
        out.append("deadline")
    finally:
        feeder.cancel()
    return out


@pytest.mark.parametrize("with_queue", [True, False], ids=["queue-marked", "polled"])
async def test_events_pass_through_with_keepalives_only_in_silences(with_queue):
    result = FakeResult(with_queue=with_queue)
    script = [(0, "a"), (0, "b"), (0.35, "c"), (0.02, "d"), (0, END)]
    out = await collect(result, keepalive=0.1, deadline_in=5, script=script)
    assert [e for e in out if e is not None] == ["a", "b", "c", "d"]
    between = out[out.index("b") + 1:out.index("c")]
    assert 2 <= len(between) <= 4 and set(between) == {None}  # ~0.35 s of silence at 0.1 s a keepalive
    assert None not in out[out.index("c"):] and not result.cancelled  # a run that ends is not cancelled


@pytest.mark.parametrize("with_queue", [True, False], ids=["queue-marked", "polled"])
async def test_a_silent_run_fails_at_its_deadline_and_is_cancelled(with_queue):
    result = FakeResult(with_queue=with_queue)
    started = asyncio.get_running_loop().time()
    out = await collect(result, keepalive=0.1, deadline_in=0.45, script=[(0, "a")])
    elapsed = asyncio.get_running_loop().time() - started
    assert out[0] == "a" and out[-1] == "deadline" and set(out[1:-1]) == {None} and 3 <= len(out[1:-1]) <= 5
    assert 0.44 < elapsed < 1.5
    assert result.cancelled or result.is_complete  # the run was stopped, not awaited


async def test_a_busy_consumer_gets_no_stale_keepalive():
    """A keepalive queued while the consumer was busy is dropped if events came out in between."""
    result = FakeResult()
    loop = asyncio.get_running_loop()
    events = runner(0.05, 5)._events(result, loop.time() + 5)
    result.queue.put_nowait("a")
    assert await anext(events) == "a"
    result.queue.put_nowait("b")
    await asyncio.sleep(0.2)  # busy: the timer queues a keepalive behind "b"
    result.queue.put_nowait("c")
    assert await anext(events) == "b"
    assert await anext(events) == "c"  # the keepalive queued before "c" was stale: not sent
    result.queue.put_nowait(END)
    assert [e async for e in events] == []


def test_the_sdk_traces_a_run_only_when_a_span_processor_is_attached(tmp_path):
    """No exporter: the SDK's spans would be built and dropped, so runs go untraced (the chat span stays real)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from services.observability.tracing import setup_tracing
    from tests.utils.app import quick_settings

    tracing = setup_tracing(quick_settings(tmp_path))
    try:
        assert tracing.receives_spans() is False
        tracing.provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        assert tracing.receives_spans() is True  # e.g. tests/test_tracing_phoenix.py: the SDK's spans arrive
    finally:
        tracing.shutdown()
