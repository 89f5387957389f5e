"""Capacity: admission control (MAX_CONCURRENT_CHATS) and coalesced text deltas (STREAM_COALESCE_MS).

Shared state across workers is in tests/test_shared_state.py; the numbers in benchmarks/bench_capacity.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from services.agent.events import Completed, KeepAlive, Started, TextDelta, ToolStarted, Usage
from services.agent.offline_model import OfflineGroundedModel
from services.core.admission import Admission
from services.core.errors import Overloaded
from tests.test_metrics_ratelimit import samples
from tests.utils.app import chat_lines, quick_settings, running_app, served_app
from tests.utils.phoenix import app_services, eventually

QUESTION = {"message": "How do I stream a chat response with IChatClient?"}
V1_BODY = {"model": "csharp-ai-buddy", "messages": [{"role": "user", "content": "How do I stream with IChatClient?"}]}


async def _active(client) -> int:
    return app_services(client).admission.active


class HeldModel(OfflineGroundedModel):
    """The offline model whose answers hold their slot before their first words until `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def stream_response(self, *args, **kwargs):
        async for event in super().stream_response(*args, **kwargs):
            if event.type == "response.output_text.delta":
                await self.go.wait()
            yield event


async def test_the_third_concurrent_chat_is_refused_at_once_and_a_slot_frees_when_a_chat_ends(tmp_path):
    settings = quick_settings(tmp_path, max_concurrent_chats=2)
    async with running_app(settings, model=(model := HeldModel())) as client:
        first = asyncio.create_task(chat_lines(client, QUESTION))
        second = asyncio.create_task(chat_lines(client, QUESTION))
        await eventually(lambda: _is(client, 2), timeout=10, interval=0.01)

        started = time.perf_counter()
        refused = await asyncio.wait_for(client.post("/api/chat", json=QUESTION), 10)  # never waits for a slot
        assert time.perf_counter() - started < 0.5  # at once, not after a running chat
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json()["detail"]

        v1 = await asyncio.wait_for(client.post("/v1/chat/completions", json={**V1_BODY, "stream": True}), 10)
        assert v1.status_code == 503 and "Retry-After" in v1.headers
        assert v1.json()["error"]["code"] == "overloaded" and v1.json()["error"]["type"] == "server_error"
        assert not first.done() and not second.done()  # both still hold their slots

        model.go.set()
        status, lines = await first
        assert status == 200 and lines[-1]["type"] == "complete"
        await eventually(lambda: _below(client, 2), timeout=5, interval=0.01)  # (the second may be done too)
        status, lines = await chat_lines(client, QUESTION)  # admitted again
        assert status == 200 and lines[-1]["type"] == "complete"
        assert (await second)[0] == 200
        assert await _active(client) == 0
        found = samples((await client.get("/metrics")).text)
    assert found[("chat_admission_refused_total", ())] == 2
    assert found[("chat_streams_active", ())] == 0


async def _is(client, count: int) -> bool:
    return await _active(client) == count


async def _below(client, count: int) -> bool:
    return await _active(client) < count


async def test_a_non_streamed_v1_answer_holds_its_slot_until_it_is_complete(tmp_path):
    settings = quick_settings(tmp_path, max_concurrent_chats=1)
    async with running_app(settings, model=(model := HeldModel())) as client:
        answer = asyncio.create_task(client.post("/v1/chat/completions", json=V1_BODY))
        await eventually(lambda: _is(client, 1), timeout=10, interval=0.01)
        assert (await asyncio.wait_for(client.post("/api/chat", json=QUESTION), 10)).status_code == 503
        assert not answer.done()  # the answer is not complete yet: its slot is still held
        model.go.set()
        assert (await answer).status_code == 200
        assert await _active(client) == 0


async def test_zero_admits_every_chat(tmp_path):
    async with running_app(quick_settings(tmp_path, max_concurrent_chats=0)) as client:
        results = await asyncio.gather(*(chat_lines(client, QUESTION) for _ in range(5)))
        assert [status for status, _ in results] == [200] * 5


@pytest.mark.slow
async def test_a_client_hanging_up_mid_stream_frees_its_slot(tmp_path):
    settings = quick_settings(tmp_path, max_concurrent_chats=1)
    async with served_app(settings, model=OfflineGroundedModel(delay_seconds=0.5)) as (url, app):
        admission = app.state.services.admission
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with client.stream("POST", "/api/chat", json=QUESTION) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.strip() and json.loads(line)["type"] == "content":
                        break  # one content line, then hang up
            assert admission.active in (0, 1)
            for _ in range(200):
                if admission.active == 0:
                    break
                await asyncio.sleep(0.02)
            assert admission.active == 0
            assert (await client.post("/api/chat", json=QUESTION)).status_code == 200


def test_admission_counts_and_releases_once():
    refused = []
    admission = Admission(limit=1, on_refusal=lambda: refused.append(1))
    slot = admission.acquire()
    with pytest.raises(Overloaded) as caught:
        admission.refuse_if_full()
    assert caught.value.status == 503 and caught.value.retry_after >= 1
    slot.release()
    slot.release()  # idempotent
    assert admission.active == 0 and refused == [1]
    unstarted = admission.acquire().guard(_events([]))
    assert admission.active == 1
    del unstarted  # a response dropped before its stream began
    assert admission.active == 0


# --- coalesced text deltas ------------------------------------------------------------------

async def _events(script: list):
    """Yield the events of `script`; a float there is a pause of that many seconds."""
    for item in script:
        if isinstance(item, float):
            await asyncio.sleep(item)
        else:
            yield item


async def test_text_deltas_within_the_window_share_a_line_the_first_goes_at_once():
    from web.ndjson import coalesce_text

    start = Started(span_id="0" * 16, conversation_id="c")
    done = Completed(span_id="0" * 16, answer="abcdef", usage=Usage())
    tool = ToolStarted(name="search_knowledge_base", arguments="{}", text="Searching…")
    script = [start, TextDelta("a"), TextDelta("b"), TextDelta("c"), 0.15, TextDelta("d"), TextDelta("e"), tool,
              KeepAlive(), TextDelta("f"), done]
    out = [event async for event in coalesce_text(_events(script), window=0.05)]
    assert out == [start, TextDelta("a"), TextDelta("bc"), TextDelta("d"), TextDelta("e"), tool, KeepAlive(),
                   TextDelta("f"), done]


async def test_waiting_text_is_sent_when_the_window_passes_even_if_the_model_is_silent():
    from web.ndjson import coalesce_text

    seen: list[tuple[float, object]] = []
    started = time.perf_counter()
    script = [TextDelta("a"), TextDelta("b"), 0.5, TextDelta("c")]
    async for event in coalesce_text(_events(script), window=0.05):
        seen.append((time.perf_counter() - started, event))
    assert [e for _, e in seen] == [TextDelta("a"), TextDelta("b"), TextDelta("c")]
    assert seen[1][0] < 0.3  # "b" did not wait for "c"


async def test_closing_the_coalesced_stream_closes_the_run():
    from web.ndjson import coalesce_text

    closed = asyncio.Event()

    async def run():
        try:
            yield TextDelta("a")
            yield TextDelta("b")
            await asyncio.sleep(10)
            yield TextDelta("never")
        finally:
            closed.set()

    stream = coalesce_text(run(), window=0.05)
    assert await anext(stream) == TextDelta("a")
    consumer = asyncio.create_task(anext(stream))  # "b" waits, the next read is pending in a task
    await asyncio.sleep(0.01)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await stream.aclose()
    assert closed.is_set()


async def test_coalescing_keeps_the_stream_contract(tmp_path):
    settings = quick_settings(tmp_path, stream_coalesce_ms=25)
    async with running_app(settings) as client:
        status, lines = await chat_lines(client, QUESTION)
    assert status == 200
    assert lines[0]["type"] == "metadata" and lines[-1]["type"] == "complete"
    content = [line for line in lines if line["type"] == "content"]
    assert content and all(line["content"] for line in content)


async def test_a_full_server_refuses_at_the_door_before_reading_the_request(tmp_path):
    async with running_app(quick_settings(tmp_path, max_concurrent_chats=1)) as client:
        admission = app_services(client).admission
        admission.active = 1  # as if one chat were running
        try:
            refused = await client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
            assert refused.status_code == 503 and refused.headers["Retry-After"]  # not the 422 of a bad body
            v1 = await client.post("/v1/chat/completions", json={"model": "nope"})
            assert v1.status_code == 503 and v1.json()["error"]["code"] == "overloaded"
            assert (await client.get("/api/news")).status_code == 200  # other routes are not gated
        finally:
            admission.active = 0
        assert (await client.post("/api/chat", content=b"{not json",
                                  headers={"content-type": "application/json"})).status_code == 422


async def test_coalesced_v1_stream_keeps_openais_chunk_order(tmp_path):
    settings = quick_settings(tmp_path, stream_coalesce_ms=25)
    async with running_app(settings) as client:
        response = await client.post("/v1/chat/completions", json={**V1_BODY, "stream": True})
    assert response.status_code == 200
    data = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-1]).strip()
