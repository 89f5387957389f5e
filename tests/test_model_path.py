"""The production model path against a real protocol peer (tests/openai_standin.py): both wire APIs,
deadlines and keepalives, honest failures, token usage and budgets, the context budget, web search.

Every app here is `create_app(settings)` with OPENAI_BASE_URL pointing at the stand-in.
"""

from __future__ import annotations

import json
import logging
import time

import bpe_openai
import httpx2
import openai
import pytest
from asgi_lifespan import LifespanManager

from services.agent.context_budget import OMITTED, estimate_tokens, token_counter, trim_to_budget
from services.agent.failures import (BAD_REPLY_TEXT, BUSY_TEXT, MAX_TURNS_TEXT, TIMEOUT_TEXT, Failure, _retry_after,
                                     classify)
from tests.openai_standin import DEFAULT_USAGE, fault, running_standin, status, text, tool_call, web_search
from tests.test_metrics_ratelimit import samples
from tests.utils.app import build_app, chat_lines, quick_settings, running_app

MODEL = "gpt-standin"
QUESTION = "How do I stream chat responses with IChatClient?"
V1_BODY = {"model": "csharp-ai-buddy", "messages": [{"role": "user", "content": QUESTION}]}


def model_settings(tmp_path, standin, **overrides):
    """Settings whose model (and nothing else) is the stand-in; quick deadlines unless a test says otherwise."""
    values = dict(openai_api_key="sk-standin", openai_base_url=standin.base_url, openai_model=MODEL,
                  chat_deadline_seconds=20, model_timeout_seconds=5, keepalive_seconds=10)
    values.update(overrides)
    return quick_settings(tmp_path, **values)


def shape(lines: list[dict]) -> list[tuple]:
    """(type, content) of each line: what a person sees, without ids and timestamps."""
    return [(line["type"], line.get("content")) for line in lines]


def pieces(answer: str) -> list[tuple]:
    from tests.openai_standin import _pieces

    return [("content", p) for p in _pieces(answer)]


async def stored_turns(client, conversation_id: str) -> list[dict]:
    response = await client.get(f"/api/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()["turns"]


async def v1_post(client, body: dict) -> httpx2.Response:
    return await client.post("/v1/chat/completions", json=body)


def responses_input(request: dict) -> list[dict]:
    return request["body"]["input"]


# ---------------------------------------------------------------- success on both wire APIs

async def test_responses_api_answer_usage_metrics_and_stored_turn(tmp_path):
    script = [tool_call("search_knowledge_base", {"query": "IChatClient streaming"}), text("Use GetStreamingResponseAsync.")]
    async with running_standin(script) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api="responses")) as client:
            status_, lines = await chat_lines(client, {"message": QUESTION})
            turns = await stored_turns(client, lines[0]["conversation_id"])
            metrics = samples((await client.get("/metrics")).text)

    assert status_ == 200
    assert shape(lines) == [("metadata", None), ("tool_call", "Searching the knowledge base for “IChatClient streaming”…"),
                            ("tool output", "No matching results"), *pieces("Use GetStreamingResponseAsync."),
                            ("complete", None)]
    first, second = standin.model_requests("/v1/responses")
    assert len(standin.model_requests()) == 2 and first["headers"]["Authorization"] == "Bearer sk-standin"
    assert first["body"]["model"] == MODEL and first["body"]["stream"] is True
    assert "data to quote and cite" in first["body"]["instructions"]  # tool/web text is data, not instructions
    assert any(i.get("type") == "function_call_output" for i in responses_input(second))
    usage = {"input_tokens": 2 * DEFAULT_USAGE[0], "output_tokens": 2 * DEFAULT_USAGE[1], "total_tokens": 2 * sum(DEFAULT_USAGE)}
    assert [(t["status"], t["assistant"], t["usage"]) for t in turns] == [("completed", "Use GetStreamingResponseAsync.", usage)]
    assert metrics[("chat_tokens_total", (("direction", "input"), ("model", MODEL)))] == usage["input_tokens"]
    assert metrics[("chat_tokens_total", (("direction", "output"), ("model", MODEL)))] == usage["output_tokens"]


async def test_chat_completions_api_with_tool_calls_and_usage(tmp_path):
    script = [tool_call("search_knowledge_base", {"query": "semantic kernel"}, call_id="call_7"), text("Add the plugin."),
              text("Plain answer.")]
    async with running_standin(script) as standin:
        # a base URL alone means Chat Completions (today's default for compatible endpoints)
        settings = model_settings(tmp_path, standin, enable_web_search=True)
        assert settings.model_api == "chat_completions"
        async with running_app(settings) as client:
            _, lines = await chat_lines(client, {"message": "How do I add a plugin to Semantic Kernel?"})
            completion = (await v1_post(client, V1_BODY)).json()

    assert shape(lines) == [("metadata", None), ("tool_call", "Searching the knowledge base for “semantic kernel”…"),
                            ("tool output", "No matching results"), *pieces("Add the plugin."), ("complete", None)]
    first, second, third = standin.model_requests("/v1/chat/completions")
    assert first["body"]["stream_options"] == {"include_usage": True}  # usage is asked for, so it is counted
    assert [t["function"]["name"] for t in first["body"]["tools"]] == ["search_knowledge_base"]  # no hosted web search
    assert [m["role"] for m in second["body"]["messages"]][-2:] == ["assistant", "tool"]
    assert second["body"]["messages"][-1]["tool_call_id"] == "call_7"
    assert completion["choices"][0]["message"]["content"] == "Plain answer."
    assert completion["usage"] == {"prompt_tokens": DEFAULT_USAGE[0], "completion_tokens": DEFAULT_USAGE[1],
                                   "total_tokens": sum(DEFAULT_USAGE)}
    assert third["body"]["messages"][-1] == {"role": "user", "content": QUESTION}


async def test_an_azure_style_v1_base_url_serves_responses_and_embeddings(tmp_path):
    script = [tool_call("search_knowledge_base", {"query": "vector store"}), text("Use VectorData.")]
    async with running_standin(script, embedding_dims=16) as standin:
        azure_url = standin.base_url.removesuffix("/v1") + "/openai/v1/"
        settings = model_settings(tmp_path, standin, openai_base_url=azure_url, openai_api_key="az-key",
                                  openai_api="responses", embedding_base_url=azure_url, embedding_model="emb-deploy",
                                  embedding_dimensions=16, enable_web_search=False)
        async with running_app(settings) as client:
            _, lines = await chat_lines(client, {"message": "Which vector store abstraction?"})
    assert shape(lines) == [("metadata", None), ("tool_call", "Searching the knowledge base for “vector store”…"),
                            ("tool output", "No matching results"), *pieces("Use VectorData."), ("complete", None)]
    assert {(r["path"], r["headers"]["Authorization"]) for r in standin.requests} == {
        ("/openai/v1/responses", "Bearer az-key"), ("/openai/v1/embeddings", "Bearer az-key")}


async def test_settings_choose_where_and_which_api(tmp_path):
    def settings(**values):
        return quick_settings(tmp_path, **values)

    assert settings().model_api is None and settings().embedding_endpoint is None
    openai_ = settings(openai_api_key="sk-1")
    assert (openai_.model_api, openai_.embedding_endpoint) == ("responses", (None, "sk-1"))
    ollama = settings(openai_base_url="http://127.0.0.1:11434/v1")
    assert (ollama.model_api, ollama.embedding_endpoint) == ("chat_completions", None)  # local MiniLM
    azure_url = "https://res.openai.azure.com/openai/v1/"
    azure = settings(openai_base_url=azure_url, openai_api_key="az", openai_api="responses", embedding_base_url=azure_url)
    assert (azure.model_api, azure.model_mode, azure.embedding_endpoint) == ("responses", "openai", (azure_url, "az"))
    split = settings(openai_api_key="sk-1", embedding_base_url="http://127.0.0.1:11434/v1")
    assert split.embedding_endpoint == ("http://127.0.0.1:11434/v1", None)  # the OpenAI key stays with OpenAI
    assert settings(openai_api_key="sk-1", offline_model=True).model_api is None


# ---------------------------------------------------------------- upstream 429 / 5xx

async def test_a_429_is_retried_then_answers(tmp_path):
    async with running_standin([status(429, {"retry-after-ms": "10"}), text("Recovered answer.")]) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api="responses")) as client:
            _, lines = await chat_lines(client, {"message": QUESTION})
    assert shape(lines) == [("metadata", None), *pieces("Recovered answer."), ("complete", None)]
    assert len(standin.model_requests()) == 2


@pytest.mark.slow  # three requests with the client's back-off between them, then two /v1 runs (~5 s)
@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_a_persistent_429_says_busy_and_v1_answers_429_with_retry_after(tmp_path, api):
    async with running_standin([status(429)], repeat=True) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api=api)) as client:
            _, lines = await chat_lines(client, {"message": QUESTION})
            turns = await stored_turns(client, lines[0]["conversation_id"])
            asked = len(standin.model_requests())
            plain = await v1_post(client, V1_BODY)
            streamed = await v1_post(client, {**V1_BODY, "stream": True})

    assert shape(lines) == [("metadata", None), ("error", BUSY_TEXT)]
    assert asked == 3  # the first call and two retries (MODEL_TIMEOUT_SECONDS 5 fits three in the 20 s deadline)
    assert [(t["status"], t["assistant"], t["error"]) for t in turns] == [("failed", "", BUSY_TEXT)]
    assert plain.status_code == 429 and plain.headers["retry-after"] == "10"
    assert plain.json() == {"error": {"message": BUSY_TEXT, "type": "rate_limit_error", "param": None,
                                      "code": "rate_limit_exceeded"}}
    blocks = [b for b in streamed.text.split("\n\n") if b]
    assert json.loads(blocks[-2][6:])["error"]["code"] == "rate_limit_exceeded" and blocks[-1] == "data: [DONE]"


async def test_a_500_is_busy_and_v1_answers_503(tmp_path):
    async with running_standin([status(500)], repeat=True) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api="responses")) as client:
            _, lines = await chat_lines(client, {"message": QUESTION})
            plain = await v1_post(client, V1_BODY)
    assert shape(lines) == [("metadata", None), ("error", BUSY_TEXT)]
    assert plain.status_code == 503 and plain.headers["retry-after"] == "5"
    assert plain.json()["error"] == {"message": BUSY_TEXT, "type": "server_error", "param": None, "code": "model_busy"}
    assert len(standin.model_requests()) == 6  # 3 attempts per turn


# ---------------------------------------------------------------- broken replies

async def test_a_cut_stream_fails_and_leaves_the_session_untouched(tmp_path):
    partial = "The first half of an answer that is cut off"
    async with running_standin([fault("cut", text=partial), text("Second answer.")]) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api="responses")) as client:
            _, lines = await chat_lines(client, {"message": "First question?"})
            conversation_id = lines[0]["conversation_id"]
            _, again = await chat_lines(client, {"message": "Second question?", "conversation_id": conversation_id})
            turns = await stored_turns(client, conversation_id)

    streamed = "".join(line["content"] for line in lines if line["type"] == "content")
    assert [t for t, _ in shape(lines)][0] == "metadata" and shape(lines)[-1] == ("error", BUSY_TEXT)
    assert streamed and partial.startswith(streamed) and streamed != partial
    assert shape(again)[-1] == ("complete", None)
    assert [(t["user"], t["status"]) for t in turns] == [("First question?", "failed"), ("Second question?", "completed")]
    assert turns[0]["assistant"] == streamed and turns[0]["error"] == BUSY_TEXT
    # the failed turn left nothing in the agent's memory: the next request carries only the new question
    replay = responses_input(standin.model_requests()[-1])
    assert [i.get("content") for i in replay] == ["Second question?"]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
@pytest.mark.parametrize("kind", ["not_sse", "malformed", "empty", "failed"])
async def test_unreadable_replies_end_in_one_error_never_a_completed_turn(tmp_path, api, kind):
    async with running_standin([fault(kind)], repeat=True) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api=api)) as client:
            _, lines = await chat_lines(client, {"message": QUESTION})
            turns = await stored_turns(client, lines[0]["conversation_id"])
            plain = await v1_post(client, V1_BODY)
    assert shape(lines) == [("metadata", None), ("error", BAD_REPLY_TEXT)]
    assert [(t["status"], t["assistant"]) for t in turns] == [("failed", "")]
    assert plain.status_code == 502 and plain.json()["error"]["code"] == "bad_upstream_reply"
    assert len(standin.model_requests()) == 2  # a 200 with a bad body is not retried


async def test_a_tool_loop_stops_at_max_turns(tmp_path):
    from services.agent.run import MAX_TURNS

    async with running_standin([tool_call("search_knowledge_base", {"query": "again"})], repeat=True) as standin:
        async with running_app(model_settings(tmp_path, standin, openai_api="responses")) as client:
            _, lines = await chat_lines(client, {"message": QUESTION})
    loop = [("tool_call", "Searching the knowledge base for “again”…"), ("tool output", "No matching results")]
    assert shape(lines) == [("metadata", None), *loop * MAX_TURNS, ("error", MAX_TURNS_TEXT)]
    assert len(standin.model_requests()) == MAX_TURNS


# ---------------------------------------------------------------- deadlines and liveness

@pytest.mark.slow  # three runs that each wait for the 1.5 s deadline (~5 s)
async def test_a_stalled_stream_sends_keepalives_then_fails_at_the_deadline(tmp_path):
    async with running_standin([fault("stall", text="Beginning of a long answer", seconds=60)], repeat=True) as standin:
        # a deadline with room for the first content to come late on a loaded machine and still leave
        # several keepalive periods of stall before it
        settings = model_settings(tmp_path, standin, openai_api="responses", chat_deadline_seconds=2.5,
                                  keepalive_seconds=0.4)
        async with running_app(settings) as client:
            started = time.monotonic()
            _, lines = await chat_lines(client, {"message": QUESTION})
            elapsed = time.monotonic() - started
            turns = await stored_turns(client, lines[0]["conversation_id"])
            streamed = await v1_post(client, {**V1_BODY, "stream": True})
            plain = await v1_post(client, V1_BODY)

    kinds = [t for t, _ in shape(lines)]
    assert kinds[0] == "metadata" and "content" in kinds and shape(lines)[-1] == ("error", TIMEOUT_TEXT)
    assert kinds.count("keepalive") >= 2 and kinds.index("keepalive") > kinds.index("content")
    assert set(kinds[kinds.index("keepalive"):-1]) == {"keepalive"} and kinds.count("error") == 1
    assert all(line == {"type": "keepalive"} for line in lines if line["type"] == "keepalive")
    assert 2.4 < elapsed < 7
    assert [(t["status"], t["error"]) for t in turns] == [("failed", TIMEOUT_TEXT)]
    blocks = [b for b in streamed.text.split("\n\n") if b]
    assert ": keepalive" in blocks and blocks[-1] == "data: [DONE]"
    assert json.loads(blocks[-2][6:])["error"]["code"] == "timeout"
    assert plain.status_code == 504 and plain.json()["error"]["message"] == TIMEOUT_TEXT


@pytest.mark.slow  # three per-call timeouts with the client's back-off between them (~3 s)
async def test_a_hung_endpoint_times_out_per_call_then_says_busy(tmp_path):
    async with running_standin([fault("hang", seconds=60)], repeat=True) as standin:
        settings = model_settings(tmp_path, standin, openai_api="chat_completions", model_timeout_seconds=0.5)
        async with running_app(settings) as client:
            started = time.monotonic()
            _, lines = await chat_lines(client, {"message": QUESTION})
            elapsed = time.monotonic() - started
    assert shape(lines) == [("metadata", None), ("error", BUSY_TEXT)]
    assert len(standin.model_requests()) == 3 and elapsed < 10


# ---------------------------------------------------------------- embeddings

async def test_slow_query_embeddings_fall_back_to_keywords(tmp_path, caplog):
    from services.ingest.kb_sync import sync_articles
    from services.retrieval.corpus import Article

    articles = [Article(doc_id="streaming", title="Streaming with IChatClient", source_url="https://learn.microsoft.com/a",
                        body="# Streaming\n\nCall GetStreamingResponseAsync on IChatClient to stream chat updates."),
                Article(doc_id="mlnet", title="ML.NET AutoML", source_url="https://learn.microsoft.com/b",
                        body="# AutoML\n\nAutoML picks trainers for tabular data in ML.NET.")]
    script = [tool_call("search_knowledge_base", {"query": "IChatClient streaming"}), text("Stream it.")]
    async with running_standin(script, embedding_dims=32) as standin:
        settings = model_settings(tmp_path, standin, openai_api="responses", embedding_base_url=standin.base_url,
                                  embedding_model="standin-embed", embedding_dimensions=32,
                                  embedding_timeout_seconds=0.3, min_relevance=0.35)
        async with running_app(settings) as client:
            services = client.app.state.services
            assert services.knowledge_base.embedder.model_id == "standin-embed"
            await sync_articles(database=services.database, kb=services.knowledge_base, articles=articles, origin="test")
            standin.embedding_delay = 5.0  # from now on every embeddings call is slower than its timeout
            before = len(standin.requests)
            with caplog.at_level(logging.WARNING, logger="services.retrieval.knowledge_base"):
                _, lines = await chat_lines(client, {"message": QUESTION})

    assert shape(lines) == [("metadata", None), ("tool_call", "Searching the knowledge base for “IChatClient streaming”…"),
                            ("tool output", "Found 1 result"), *pieces("Stream it."), ("complete", None)]
    assert lines[2]["sources"] == [{"title": "Streaming with IChatClient", "url": "https://learn.microsoft.com/a",
                                    "score": 1.0}]
    assert [r["path"] for r in standin.requests[before:]].count("/v1/embeddings") == 2  # one try, one retry
    assert "keyword-only retrieval" in caplog.text


# ---------------------------------------------------------------- budgets

async def test_the_daily_token_budget_refuses_with_a_clear_429(tmp_path):
    async with running_standin([text("One."), text("Two.")]) as standin:
        settings = model_settings(tmp_path, standin, openai_api="responses",
                                  token_budget_per_key_daily=2 * sum(DEFAULT_USAGE))
        async with running_app(settings) as client:
            first = await chat_lines(client, {"message": QUESTION})
            second = (await v1_post(client, V1_BODY)).status_code
            refused = await client.post("/api/chat", json={"message": QUESTION})
            refused_v1 = await v1_post(client, V1_BODY)
            budget = client.app.state.services.chat.budget
            spent = budget.spent("ip:127.0.0.1")

    assert first[1][-1]["type"] == "complete" and second == 200 and spent == 2 * sum(DEFAULT_USAGE)
    assert refused.status_code == 429 and "token budget" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    assert refused_v1.status_code == 429 and refused_v1.json()["error"]["code"] == "token_budget_exceeded"
    assert len(standin.model_requests()) == 2  # refused before any model call


async def test_fifty_huge_history_items_stay_under_the_context_budget(tmp_path):
    from services.storage.conversations import open_session

    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"item {n} " + "x" * 10_000} for n in range(50)]
    async with running_standin([text("Fits.")], repeat=True) as standin:
        settings = model_settings(tmp_path, standin, openai_api="responses", session_max_items=20,
                                  openai_model="gpt-4.1-mini")  # a name OpenAI's tokenizer knows: counted exactly
        async with running_app(settings) as client:
            plain = await v1_post(client, {**V1_BODY, "messages": [*history, V1_BODY["messages"][0]]})
            _, lines = await chat_lines(client, {"message": QUESTION, "history": history})
            # a stored conversation whose agent memory already holds the 50 huge items
            _, first = await chat_lines(client, {"message": "Start."})
            conversation_id = first[0]["conversation_id"]
            session = open_session(client.app.state.services.database, conversation_id)
            await session.add_items(history)
            _, continued = await chat_lines(client, {"message": QUESTION, "conversation_id": conversation_id})
            stored_after = await session.get_items()

    assert plain.status_code == 200 and lines[-1]["type"] == "complete" and continued[-1]["type"] == "complete"
    budget = settings.context_budget_tokens
    o200k = bpe_openai.encoding_for_model(settings.openai_model)  # the model's own tokenizer, not ours
    for request in standin.model_requests():
        sent = json.dumps({k: request["body"].get(k) for k in ("instructions", "input", "tools")}, ensure_ascii=False)
        assert len(o200k.encode_ordinary(sent)) <= budget, request["size"]
        assert responses_input(request)[-1]["content"] in (QUESTION, "Start.")
    v1_input = responses_input(standin.model_requests()[0])
    assert 1 < len(v1_input) < 51 and v1_input[-2]["content"].startswith("item 49 ")  # the newest turns stay
    assert len(stored_after) == 20  # the stored session is bounded (SESSION_MAX_ITEMS)
    assert stored_after[-2] == {"role": "user", "content": QUESTION} and stored_after[-1]["role"] == "assistant"


def test_trimming_drops_earlier_tool_outputs_first_then_oldest_turns():
    big = "y" * 8000
    items = [{"role": "user", "content": "q1"}, {"type": "function_call", "call_id": "a", "name": "t", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "a", "output": big}, {"role": "assistant", "content": "a1"},
             {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2 " + big},
             {"role": "user", "content": "q3"}, {"type": "function_call", "call_id": "b", "name": "t", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "b", "output": big}]
    cost = [estimate_tokens(i) for i in items]
    omitted = estimate_tokens({**items[2], "output": OMITTED})
    # room for everything but the first tool output: only that output is shortened
    kept = trim_to_budget(items, budget=sum(cost) - cost[2] + omitted, fixed=0)
    assert kept[2]["output"] == OMITTED and kept[5]["content"].startswith("a2 ") and kept[8]["output"] == big
    # less room: then the oldest turn goes whole; this turn's question and calls always stay
    kept = trim_to_budget(items, budget=sum(cost) - sum(cost[:4]), fixed=0)
    assert [i.get("content") for i in kept if i.get("role")] == ["q2", "a2 " + big, "q3"]
    kept = trim_to_budget(items, budget=1000, fixed=0)
    assert kept[0] == {"role": "user", "content": "q3"} and len(kept) == 3
    assert sum(estimate_tokens(i) for i in kept) <= 1000 and kept[2]["output"].startswith("yyy")


def test_openai_models_are_counted_with_their_tokenizer_and_others_estimated():
    o200k = bpe_openai.get_encoding("o200k_base")
    text = "How do I stream a chat completion with IChatClient in C#? " * 50 + "=" * 4000
    for model in ("gpt-4.1-mini", "gpt-5-mini", "gpt-4o-2024-08-06", "o4-mini"):
        assert token_counter(model)(text) == len(o200k.encode_ordinary(text)) + 4, model
    assert token_counter("gpt-4.1-mini")(text) < estimate_tokens(text) - 200  # (the estimate is not the count)
    assert token_counter("llama3.1:8b") is estimate_tokens  # an endpoint's own model: the documented estimate
    assert token_counter("OfflineGroundedModel") is estimate_tokens


def test_failures_are_classified_with_retry_hints():
    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")

    def error(code: int, headers: dict) -> openai.APIStatusError:
        response = httpx2.Response(code, headers=headers, request=request)
        cls = openai.RateLimitError if code == 429 else openai.InternalServerError if code >= 500 else openai.BadRequestError
        return cls("x", response=response, body=None)

    assert classify(error(429, {"retry-after": "7"})) == Failure("rate_limited", BUSY_TEXT, 7)
    assert classify(error(429, {"retry-after-ms": "1500"})).retry_after == 2
    assert classify(error(503, {})) == Failure("busy", BUSY_TEXT, 5)
    assert classify(error(400, {})).kind == "error"
    assert classify(openai.APITimeoutError(request=request)).kind == "busy"
    assert _retry_after(error(429, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}), "rate_limited") == 10


# ---------------------------------------------------------------- web search

async def test_hosted_web_search_is_announced_and_its_citations_become_sources(tmp_path):
    cited = [("What's new in .NET 10", "https://learn.microsoft.com/dotnet/core/whats-new/dotnet-10/overview"),
             ("Microsoft.Extensions.AI 10", "https://devblogs.microsoft.com/dotnet/meai-10/")]
    answer = ".NET 10 ships Microsoft.Extensions.AI 10."
    async with running_standin([web_search("latest .NET 10 AI release", answer, cited)]) as standin:
        settings = model_settings(tmp_path, standin, openai_api="responses", enable_web_search=True)
        async with running_app(settings) as client:
            _, lines = await chat_lines(client, {"message": "What came with .NET 10 for AI?"})
            turns = await stored_turns(client, lines[0]["conversation_id"])

    sources = [{"title": t, "url": u, "score": None} for t, u in cited]
    assert shape(lines) == [("metadata", None), ("tool_call", "Searching the web for “latest .NET 10 AI release”…"),
                            *pieces(answer), ("tool output", "Found 2 results"), ("complete", None)]
    assert lines[1]["name"] == "web_search" and lines[-2]["name"] == "web_search" and lines[-2]["sources"] == sources
    assert turns[0]["sources"] == sources
    assert any(t.get("type", "").startswith("web_search") for t in standin.model_requests()[0]["body"]["tools"])


async def test_v1_through_the_official_client_gets_usage_and_busy_errors(tmp_path):
    async with running_standin([text("Answer one."), status(500), status(500), status(500)]) as standin:
        app = build_app(model_settings(tmp_path, standin, openai_api="responses"))
        async with LifespanManager(app, startup_timeout=180) as manager:
            transport = httpx2.ASGITransport(app=manager.app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
                client = openai.AsyncOpenAI(api_key="k", base_url="http://testserver/v1", http_client=http, max_retries=0)
                completion = await client.chat.completions.create(**V1_BODY)
                with pytest.raises(openai.InternalServerError) as busy:
                    await client.chat.completions.create(**V1_BODY)
    assert completion.usage.prompt_tokens == DEFAULT_USAGE[0] and completion.usage.completion_tokens == DEFAULT_USAGE[1]
    assert busy.value.status_code == 503 and busy.value.response.headers["retry-after"] == "5"
    assert busy.value.body["message"] == BUSY_TEXT and busy.value.code == "model_busy"
