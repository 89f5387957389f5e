"""GET /metrics (Prometheus text) and the per-key/IP rate limits on chat and feedback."""

from __future__ import annotations

import json
import re

from prometheus_client.parser import text_string_to_metric_families

from services.core.rate_limits import MAX_TRACKED, FixedWindowLimiter, RateLimits, identity
from services.core.errors import RateLimited
from tests.utils.app import FakeClock, chat_lines, no_retry_waits, quick_settings, running_app

SPAN = "0123456789abcdef"


def samples(text: str) -> dict[tuple, float]:
    """{(name, sorted label items): value} from the exposition text (parsed, so the format is checked too)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_count_requests_chats_tools_and_feedback(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        status, lines = await chat_lines(client, {"message": "How do I use Semantic Kernel?"})
        assert status == 200 and lines[-1]["type"] == "complete"
        conversation_id = lines[0]["conversation_id"]
        assert (await client.get(f"/api/conversations/{conversation_id}")).status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404
        assert (await client.post("/api/feedback", json={"span_id": SPAN, "feedback_type": "thumbs_down"})).status_code == 200
        assert (await client.post("/api/feedback", json={"span_id": "nope", "feedback_type": "thumbs_down"})).status_code == 422

        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)

    assert found[("chat_streams_started_total", ())] == 1
    assert found[("chat_streams_completed_total", ())] == 1
    assert found[("chat_time_to_first_content_seconds_count", ())] == 1
    assert found[("chat_stream_duration_seconds_count", ())] == 1
    assert found[("chat_tool_calls_total", (("tool", "search_knowledge_base"),))] >= 1
    assert found[("feedback_received_total", (("feedback_type", "thumbs_down"),))] == 1
    http = {labels: value for (name, labels), value in found.items() if name == "http_requests_total"}
    assert http[(("method", "POST"), ("route", "/api/chat"), ("status", "200"))] == 1
    # the route template, never the raw path (bounded label values)
    assert http[(("method", "GET"), ("route", "/api/conversations/{conversation_id}"), ("status", "200"))] == 1
    assert http[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    assert http[(("method", "POST"), ("route", "/api/feedback"), ("status", "422"))] == 1
    assert not any(conversation_id in str(labels) for labels in http)


async def test_a_failed_chat_is_counted(tmp_path, monkeypatch):
    # A model endpoint on loopback that refuses connections: the stream ends with an error line.
    no_retry_waits(monkeypatch)  # retried as configured, without the backoff waits
    settings = quick_settings(tmp_path, openai_api_key="sk-test", openai_base_url="http://127.0.0.1:9/v1")
    async with running_app(settings) as client:
        status, lines = await chat_lines(client, {"message": "Hello?"})
        assert status == 200 and lines[-1]["type"] == "error"
        found = samples((await client.get("/metrics")).text)
    failed = {labels: v for (name, labels), v in found.items() if name == "chat_streams_failed_total"}
    assert sum(failed.values()) == 1
    assert found[("chat_streams_completed_total", ())] == 0


SITE = "https://buddy.example.com"


async def register_keys(client, *keys: str) -> None:
    from services.storage.database import USERS

    for key in keys:
        await client.app.state.services.database[USERS].insert_one({"_id": key})


async def test_chat_is_limited_per_validated_magic_key_with_headers(tmp_path):
    settings = quick_settings(tmp_path, environment="production", cors_origins=[SITE], rate_limit_chat=2,
                              rate_limit_feedback=0, rate_limit_window_seconds=60, metrics_public=True)
    async with running_app(settings, clock=FakeClock()) as client:
        await register_keys(client, "alice", "bob")
        async with client.stream("POST", "/api/chat", json={"message": "What is ML.NET?", "magic_key": "alice"}) as response:
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "2"
            assert response.headers["x-ratelimit-remaining"] == "1"
            assert response.headers["x-ratelimit-reset"] == "60"  # the clock has not moved
            streamed = [line async for line in response.aiter_lines() if line.strip()]
            assert streamed[-1].startswith('{"type": "complete"')
            alices_span = json.loads(streamed[0])["span_id"]
        # requests refused before the key check (empty, no key, unknown key) cost nothing and carry no counts
        for body, code in (({"message": " ", "magic_key": "alice"}, 400), ({"message": "hi"}, 401),
                           ({"message": "hi", "magic_key": "mallory"}, 403)):
            response = await client.post("/api/chat", json=body)
            assert response.status_code == code and "x-ratelimit-remaining" not in response.headers, body
        second = await client.post("/api/chat", json={"message": "What is ML.NET?", "magic_key": "alice"})
        assert second.status_code == 200 and second.headers["x-ratelimit-remaining"] == "0"

        refused = await client.post("/api/chat", json={"message": "again", "magic_key": "alice"},
                                    headers={"Origin": SITE})
        assert refused.status_code == 429
        assert set(refused.json()) == {"detail"} and "Too many requests" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "60" and refused.headers["x-ratelimit-remaining"] == "0"
        assert refused.headers["access-control-allow-origin"] == SITE  # a browser can read the 429
        assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
        # the X-Magic-Key header is not an identity: only the validated key in the body counts
        assert (await client.post("/api/chat", json={"message": "again", "magic_key": "alice"},
                                  headers={"X-Magic-Key": "bob"})).status_code == 429

        # another key has its own allowance
        other = await client.post("/api/chat", json={"message": "What is ML.NET?", "magic_key": "bob"})
        assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == "1"
        # feedback is limited separately (here: not at all)
        feedback = await client.post("/api/feedback", json={"span_id": alices_span, "feedback_type": "thumbs_up",
                                                            "magic_key": "alice"})
        assert feedback.status_code == 200 and "x-ratelimit-limit" not in feedback.headers

        found = samples((await client.get("/metrics")).text)
    assert found[("rate_limited_requests_total", (("limit", "chat"),))] == 2
    assert found[("http_requests_total", (("method", "POST"), ("route", "/api/chat"), ("status", "429")))] == 2


async def test_without_a_validated_key_chat_is_limited_by_client_address(tmp_path):
    # Development checks no keys: whatever key a request names, the client address is the identity.
    settings = quick_settings(tmp_path, rate_limit_chat=2, rate_limit_window_seconds=60)
    async with running_app(settings, clock=FakeClock()) as client:
        first = await client.post("/api/chat", json={"message": "What is ML.NET?", "magic_key": "alice"})
        second = await client.post("/api/chat", json={"message": "What is ML.NET?", "magic_key": "bob"},
                                   headers={"X-Magic-Key": "carol"})
        third = await client.post("/api/chat", json={"message": "What is ML.NET?"})
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert [first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]] == ["1", "0"]


async def test_openai_compatible_chat_shares_the_chat_limit_by_bearer_key(tmp_path):
    settings = quick_settings(tmp_path, environment="production", cors_origins=[SITE], rate_limit_chat=2,
                              rate_limit_window_seconds=60)
    body = {"model": "csharp-ai-buddy", "messages": [{"role": "user", "content": "What is ML.NET?"}]}
    async with running_app(settings, clock=FakeClock()) as client:
        await register_keys(client, "carol", "dave")
        first = await client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer carol"})
        assert first.status_code == 200 and first.headers["x-ratelimit-remaining"] == "1"
        status, lines = await chat_lines(client, {"message": "What is ML.NET?", "magic_key": "carol"})
        assert status == 200 and lines[-1]["type"] == "complete"  # the same allowance as /api/chat
        refused = await client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer carol"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
        error = refused.json()["error"]  # OpenAI's shape, so OpenAI clients raise RateLimitError
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert "Too many requests" in error["message"] and refused.headers["x-ratelimit-remaining"] == "0"
        streamed = await client.post("/v1/chat/completions", json={**body, "stream": True},
                                     headers={"Authorization": "Bearer carol"})
        assert streamed.status_code == 429 and streamed.json()["error"]["code"] == "rate_limit_exceeded"
        other = await client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer dave"})
        assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == "1"


async def test_feedback_limit_by_client_address_resets_after_the_window(tmp_path):
    clock = FakeClock()
    settings = quick_settings(tmp_path, rate_limit_chat=5, rate_limit_feedback=1, rate_limit_window_seconds=10)
    async with running_app(settings, clock=clock) as client:
        body = {"span_id": SPAN, "feedback_type": "thumbs_up"}
        allowed = await client.post("/api/feedback", json=body)
        assert allowed.status_code == 200 and allowed.headers["x-ratelimit-remaining"] == "0"
        refused = await client.post("/api/feedback", json=body)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
        assert "Too many requests" in refused.json()["detail"]
        # chat counts apart from feedback
        assert (await client.post("/api/chat", json={"message": "What is ML.NET?"})).headers["x-ratelimit-remaining"] == "4"
        clock.advance(9.5)
        still = await client.post("/api/feedback", json=body)
        assert still.status_code == 429 and still.headers["retry-after"] == "1"
        clock.advance(0.5)  # the window is over
        again = await client.post("/api/feedback", json=body)
        assert again.status_code == 200 and again.headers["x-ratelimit-remaining"] == "0"


async def test_zero_disables_the_limits(tmp_path):
    async with running_app(quick_settings(tmp_path, rate_limit_chat=0, rate_limit_feedback=0)) as client:
        for _ in range(3):
            response = await client.post("/api/chat", json={"message": "What is ML.NET?"})
            assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers
        for _ in range(5):
            response = await client.post("/api/feedback", json={"span_id": SPAN, "feedback_type": "thumbs_up"})
            assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers


def test_fixed_window_counts_resets_and_stays_bounded():
    now = [1000.0]
    limiter = FixedWindowLimiter(limit=3, window_seconds=10, clock=lambda: now[0])
    decisions = [limiter.hit("a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].headers()["Retry-After"] == "10"
    now[0] += 9.5
    assert limiter.hit("a").reset_after == 1 and not limiter.hit("a").allowed
    now[0] += 0.5
    assert limiter.hit("a").allowed  # a new window
    for i in range(MAX_TRACKED + 5):
        limiter.hit(f"ip:{i}")
    assert len(limiter._windows) <= MAX_TRACKED


def test_rate_limits_admit_counts_per_name_and_raises_when_spent():
    now = [0.0]
    refusals: list[str] = []
    limits = RateLimits(chat=1, feedback=0, window_seconds=30, clock=lambda: now[0], on_refusal=refusals.append)
    assert limits.admit("feedback", magic_key=None, client_ip="10.0.0.1") == {}  # 0: off, no headers
    assert limits.admit("chat", magic_key="k", client_ip="10.0.0.1")["X-RateLimit-Remaining"] == "0"
    assert limits.admit("chat", magic_key=None, client_ip="10.0.0.1")["X-RateLimit-Remaining"] == "0"  # its own
    try:
        limits.admit("chat", magic_key="k", client_ip="10.0.0.2")
    except RateLimited as refused:
        assert refused.status == 429 and refused.retry_after == 30
        assert refused.headers["Retry-After"] == "30" and "Too many requests" in refused.message
    else:
        raise AssertionError("the second request of the key was admitted")
    assert refusals == ["chat"]
    now[0] += 30
    assert limits.admit("chat", magic_key="k", client_ip=None)["X-RateLimit-Remaining"] == "0"


def test_identity_hashes_keys_and_falls_back_to_the_address():
    assert identity(magic_key="secret", client_ip="10.0.0.1").startswith("key:")
    assert "secret" not in identity(magic_key="secret", client_ip=None)
    assert identity(magic_key=" secret ", client_ip=None) == identity(magic_key="secret", client_ip=None)
    assert identity(magic_key="", client_ip="10.0.0.1") == "ip:10.0.0.1"
    assert re.fullmatch(r"key:[0-9a-f]{24}", identity(magic_key="k", client_ip=None))
