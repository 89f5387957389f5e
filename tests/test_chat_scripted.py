"""Exact stream sequences with the SDK's ScriptedModel driving the real Runner and our tools."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from tests.utils.app import assert_no_run_left, chat_lines, running_app, served_app
from tests.utils.models import hanging_scripted_model

async def test_exact_event_sequence_with_a_tool_call(seeded_settings):
    model = ScriptedModel([
        [function_call("search_knowledge_base", {"query": "IChatClient streaming"}, call_id="call_1")],
        [assistant_message("Use GetStreamingResponseAsync.")],
    ])
    async with running_app(seeded_settings, model=model) as client:
        status, lines = await chat_lines(client, {"message": "How do I stream?", "filters": {"aiLibrary": "Microsoft.Extensions.AI"}})
    assert status == 200
    assert [line["type"] for line in lines] == ["metadata", "tool_call", "tool output", "content", "complete"]
    assert lines[1]["name"] == "search_knowledge_base" and "IChatClient streaming" in lines[1]["content"]
    assert lines[2]["name"] == "search_knowledge_base" and lines[2]["sources"]
    assert lines[3]["content"] == "Use GetStreamingResponseAsync."
    assert lines[0]["span_id"] == lines[-1]["span_id"]
    model.assert_complete()
    # the filters reached the model's instructions and the tool
    assert "AI library: Microsoft.Extensions.AI" in model.first_call.system_instructions


async def test_model_failure_mid_stream_is_one_clean_error_line(seeded_settings):
    model = ScriptedModel([
        [function_call("search_knowledge_base", {"query": "x"}, call_id="call_1")],
        ModelStep.raise_error(RuntimeError("upstream exploded: secret-token-123 at /srv/app.py line 9")),
    ])
    async with running_app(seeded_settings, model=model) as client:
        status, lines = await chat_lines(client, {"message": "anything"})
        types = [line["type"] for line in lines]
        assert status == 200 and types[0] == "metadata" and types[-1] == "error"
        assert types.count("error") == 1 and "complete" not in types
        assert "secret-token-123" not in str(lines) and "exploded" not in str(lines)
        # the server keeps serving
        assert (await client.get("/health")).status_code == 200


@pytest.mark.slow  # a live uvicorn server: a real hang-up
async def test_client_disconnect_cancels_the_run(seeded_settings):
    model, started, cancelled = hanging_scripted_model()
    async with served_app(seeded_settings, model=model) as (base_url, _app):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            async with client.stream("POST", "/api/chat", json={"message": "hello"}) as response:
                lines = response.aiter_lines()  # keep a reference: a dropped iterator closes the response
                first = await lines.__anext__()
                assert '"metadata"' in first
                await asyncio.wait_for(started.wait(), 30)
            # leaving the block hangs up while the model is still working
        await asyncio.wait_for(cancelled.wait(), 10)
        await assert_no_run_left()  # nothing of the run is left behind
