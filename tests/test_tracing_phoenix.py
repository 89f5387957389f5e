"""Traces and feedback against a real Phoenix server (started by the `phoenix_server` fixture)."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest

from services.storage.database import FEEDBACK
from tests.utils.app import CHAT_QUESTION, chat_lines, copy_seeded_data_dir, quick_settings, running_app, serve_aiohttp
from tests.utils.phoenix import OutageGate, app_services, eventually

DEAD_URL = "http://127.0.0.1:9/query"  # NuGet lookups fail fast on loopback instead of leaving the machine
MODEL_ANSWER = "Register IChatClient with AddChatClient; see the Microsoft.Extensions.AI docs."


def phoenix_settings(tmp_path, phoenix, **overrides):
    return quick_settings(tmp_path, phoenix_collector_endpoint=phoenix.url,
                          phoenix_project_name=f"test-{uuid.uuid4().hex[:10]}", nuget_search_urls=[DEAD_URL],
                          feedback_retry_base_seconds=0.2, feedback_retry_max_seconds=1.0, **overrides)


@contextlib.asynccontextmanager
async def chat_completions_standin():
    """A streaming OpenAI-compatible /v1/chat/completions on loopback: first a KB tool call, then an answer.

    With it the app runs the SDK's real Chat Completions model, so the trace has LLM spans too.
    """
    from aiohttp import web

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "standin",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if not any(m.get("role") == "tool" for m in body["messages"]):
            call = {"index": 0, "id": "call_kb", "type": "function",
                    "function": {"name": "search_knowledge_base", "arguments": json.dumps({"query": CHAT_QUESTION})}}
            await response.write(chunk({"role": "assistant", "tool_calls": [call]}))
            await response.write(chunk({}, "tool_calls"))
        else:
            for word in MODEL_ANSWER.split(" "):
                await response.write(chunk({"role": "assistant", "content": word + " "}))
            await response.write(chunk({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serve_aiohttp(app) as base_url:
        yield f"{base_url}/v1"


async def chat_span_id(client) -> str:
    status, lines = await chat_lines(client, {"message": CHAT_QUESTION})
    assert status == 200 and lines[-1]["type"] == "complete", lines[-1]
    assert lines[0]["span_id"] == lines[-1]["span_id"]
    return lines[-1]["span_id"]


def flush(client) -> None:
    assert app_services(client).tracing.provider.force_flush(timeout_millis=10_000)


async def trace_spans(phoenix, project: str, span_id: str, minimum: int = 8) -> list[dict]:
    """The spans of the trace the given span belongs to, once at least `minimum` have been ingested.

    (chat, agent workflow, agent, two turns, two LLM generations, the tool: 8+ with the stand-in model)
    """
    found = await eventually(lambda: phoenix.spans(project, span_id=[span_id]))
    trace_id = found[0]["context"]["trace_id"]

    async def whole():
        spans = await phoenix.spans(project, trace_id=[trace_id])
        return spans if len(spans) >= minimum else None

    return await eventually(whole)


@pytest.mark.phoenix
async def test_chat_trace_arrives_rooted_at_the_streamed_span(tmp_path, seeded_data_dir, phoenix_server):
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    async with chat_completions_standin() as model_url:
        settings = phoenix_settings(tmp_path, phoenix_server, openai_api_key="sk-test", openai_base_url=model_url)
        async with running_app(settings) as client:
            assert app_services(client).tracing.exporters == ["phoenix"]
            span_id = await chat_span_id(client)
            flush(client)
            spans = await trace_spans(phoenix_server, settings.phoenix_project_name, span_id)

    by_id = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if not s.get("parent_id")]
    assert [r["context"]["span_id"] for r in roots] == [span_id], "the streamed span is the one root"
    assert by_id[span_id]["name"] == "chat"
    kinds = {s["span_kind"] for s in spans}
    assert {"CHAIN", "AGENT", "LLM", "TOOL"} <= kinds, kinds
    assert any(s["name"] == "search_knowledge_base" for s in spans)
    for span in spans:  # every SDK span nests (transitively) under the chat span
        node = span
        while node.get("parent_id"):
            node = by_id[node["parent_id"]]
        assert node["context"]["span_id"] == span_id
    assert by_id[span_id]["attributes"]["input.value"] == CHAT_QUESTION
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(llm) == 2 and all(s["attributes"]["llm.input_messages.0.message.role"] == "system" for s in llm)


@pytest.mark.phoenix
async def test_content_can_be_kept_off_the_spans(tmp_path, seeded_data_dir, phoenix_server):
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    async with chat_completions_standin() as model_url:
        settings = phoenix_settings(tmp_path, phoenix_server, openai_api_key="sk-test", openai_base_url=model_url,
                                    trace_include_content=False)
        async with running_app(settings) as client:
            span_id = await chat_span_id(client)
            flush(client)
            spans = await trace_spans(phoenix_server, settings.phoenix_project_name, span_id)

    dumped = json.dumps([s["attributes"] for s in spans])
    assert len(spans) >= 4
    assert CHAT_QUESTION not in dumped
    assert "AddChatClient" not in dumped  # nor the model's answer
    assert "learn.microsoft.com" not in dumped  # nor the retrieved documents
    llm = next(s for s in spans if s["span_kind"] == "LLM")
    assert llm["attributes"].get("input.value") in (None, "__REDACTED__")


@pytest.mark.phoenix
async def test_feedback_lands_on_the_trace_and_a_new_rating_replaces_it(tmp_path, seeded_data_dir, phoenix_server):
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    settings = phoenix_settings(tmp_path, phoenix_server)
    project = settings.phoenix_project_name
    async with running_app(settings) as client:
        span_id = await chat_span_id(client)
        flush(client)
        await eventually(lambda: phoenix_server.spans(project, span_id=[span_id]))

        response = await client.post("/api/feedback", json={"span_id": span_id, "feedback_type": "thumbs_down",
                                                            "comment": "Missing the DI registration"})
        assert response.status_code == 200 and response.json()["success"] is True
        first = await eventually(lambda: phoenix_server.span_annotations(project, span_id))
        assert len(first) == 1
        assert first[0]["annotator_kind"] == "HUMAN"
        assert first[0]["result"] == {"label": "thumbs_down", "score": 0.0, "explanation": "Missing the DI registration"}

        response = await client.post("/api/feedback", json={"span_id": span_id, "feedback_type": "thumbs_up"})
        assert response.status_code == 200

        async def replaced():
            notes = await phoenix_server.span_annotations(project, span_id)
            return notes if notes and notes[0]["result"]["label"] == "thumbs_up" else None

        second = await eventually(replaced)
        assert len(second) == 1 and second[0]["id"] == first[0]["id"]
        assert second[0]["result"]["score"] == 1.0
        await eventually(lambda: _delivered(client, span_id))
        row = await app_services(client).database[FEEDBACK].find_one({"_id": span_id})
        assert row["conversation_id"] and row["feedback_type"] == "thumbs_up" and row["revision"] == 2

        # A span Phoenix has never seen: Phoenix answers 404, the rating stays queued for a retry.
        unknown = "00000000deadbeef"
        assert (await client.post("/api/feedback", json={"span_id": unknown, "feedback_type": "thumbs_up"})).status_code == 200
        row = await eventually(lambda: _attempted(client, unknown, 1))
        assert row["delivery"]["phoenix"]["state"] == "pending" and "404" in row["delivery"]["phoenix"]["last_error"]


async def _delivered(client, span_id: str) -> bool:
    row = await app_services(client).database[FEEDBACK].find_one({"_id": span_id})
    return row["delivery"]["phoenix"]["state"] == "delivered"


@pytest.mark.phoenix
async def test_feedback_survives_phoenix_down_and_a_restart(tmp_path, seeded_data_dir, phoenix_server):
    """Phoenix unreachable → feedback accepted and stored → app restarted → Phoenix back → all delivered, once.

    The outage is a gate in front of the real Phoenix that refuses connections, as a stopped server does
    (a real Phoenix restart costs 15-30 s and tests Phoenix rather than the app).
    """
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    gate = OutageGate(phoenix_server.port)
    gate.up()
    settings = phoenix_settings(tmp_path, gate)
    project = settings.phoenix_project_name
    rating = {"thumbs_up": "while down, first process", "thumbs_down": "while down, second process"}
    try:
        async with running_app(settings) as client:
            first, second = [await chat_span_id(client) for _ in range(2)]
            flush(client)
            for span_id in (first, second):
                await eventually(lambda: phoenix_server.spans(project, span_id=[span_id]))
            gate.down()
            response = await client.post("/api/feedback", json={"span_id": first, "feedback_type": "thumbs_up",
                                                                "comment": rating["thumbs_up"]})
            assert response.status_code == 200 and response.json()["success"] is True
            row = await eventually(lambda: _attempted(client, first, 2))
            assert row["delivery"]["phoenix"]["state"] == "pending"
            assert "unreachable" in row["delivery"]["phoenix"]["last_error"]

        # a new process on the same data picks up what the old one left pending
        async with running_app(settings) as client:
            response = await client.post("/api/feedback", json={"span_id": second, "feedback_type": "thumbs_down",
                                                                "comment": rating["thumbs_down"]})
            assert response.status_code == 200
            await eventually(lambda: _attempted(client, second, 1))
            await eventually(lambda: _attempted(client, first, 3))  # retried by this process too
            assert not await phoenix_server.span_annotations(project, first)  # nothing got through the outage
            gate.up()
            for span_id in (first, second):
                await eventually(lambda: _delivered(client, span_id), timeout=30)
            metrics = (await client.get("/metrics")).text
            assert 'feedback_delivery_attempts_total{outcome="delivered",target="phoenix"} 2.0' in metrics
    finally:
        gate.down()
    for span_id, kind in ((first, "thumbs_up"), (second, "thumbs_down")):
        notes = await phoenix_server.span_annotations(project, span_id)
        assert len(notes) == 1, notes  # nothing lost, nothing duplicated
        assert notes[0]["result"] == {"label": kind, "score": 1.0 if kind == "thumbs_up" else 0.0,
                                      "explanation": rating[kind]}


async def _attempted(client, span_id: str, attempts: int) -> dict | None:
    row = await app_services(client).database[FEEDBACK].find_one({"_id": span_id})
    return row if row and row["delivery"]["phoenix"]["attempts"] >= attempts else None


async def test_two_live_apps_each_get_their_own_sdk_spans(tmp_path):
    """Instrumented once per process, the SDK's spans go to the provider of the app that ran the chat."""
    from agents.tracing import get_trace_provider
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    settings = [quick_settings(tmp_path / name, nuget_search_urls=[DEAD_URL]) for name in "ab"]
    async with running_app(settings[0]) as first, running_app(settings[1]) as second:
        clients = (first, second)
        for client, exporter in zip(clients, exporters):
            app_services(client).tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        span_ids = [await chat_span_id(client) for client in (second, first, second)]
    assert not OpenAIAgentsInstrumentor().is_instrumented_by_opentelemetry  # the last app to close undid it
    assert list(get_trace_provider()._multi_processor._processors) == []

    for exporter, expected in zip(exporters, ([span_ids[1]], [span_ids[0], span_ids[2]])):
        spans = exporter.get_finished_spans()
        roots = [format(s.context.span_id, "016x") for s in spans if s.parent is None]
        assert sorted(roots) == sorted(expected)
        trace_ids = {s.context.trace_id for s in spans}
        assert len(trace_ids) == len(expected)  # every SDK span sits in one of this app's chat traces
        assert sum(s.name == "search_knowledge_base" for s in spans) == len(expected)
