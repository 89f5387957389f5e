"""Security and abuse findings (H1-H2, M1-M5, L1-L7): each test fails on the behaviour before its fix.

Production apps here register keys straight in `userRegistrations` (hashed, as `keys add` stores
them); tests/test_keys_cli.py covers the command itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import xml.etree.ElementTree as ET

import httpx
import pytest

from services.agent.tool_results import ToolResult
from services.content.samples import SampleError, validate_sample
from services.core.rate_limits import RateLimits
from services.ingest.sources import parse_feed
from services.storage.database import CONVERSATIONS, FEEDBACK, NEWS, SAMPLES, TELEMETRY, USERS
from services.storage.keys import new_key_document
from tests.utils.app import (assert_no_run_left, build_app, chat_lines, free_port, quick_settings, running_app,
                             served_app)
from tests.utils.models import hanging_scripted_model
from web.body_limit import MAX_BODY_BYTES
from web.client_ip import client_ip
from web.server_timeouts import TimedH11Protocol

MODEL = "csharp-ai-buddy"


def prod_settings(tmp_path, **overrides):
    return quick_settings(tmp_path, environment="production", **overrides)


async def add_keys(client, n: int = 2) -> list[str]:
    """Register `n` enabled keys the way `python main.py keys add` does; returns the plaintext keys."""
    keys = []
    for _ in range(n):
        key, doc = new_key_document(note="test")
        await client.app.state.services.database[USERS].insert_one(doc)
        keys.append(key)
    return keys


# --- H1: the counted bytes decide, whatever the framing ------------------------------------------

async def _raw_exchange(base_url: str, head: bytes, chunks: list[bytes], *, timeout: float = 20) -> bytes:
    """Send a raw request (head, then body pieces) and read the response until the server closes."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        for chunk in chunks:
            try:
                writer.write(chunk)
                await writer.drain()
            except (ConnectionError, OSError):  # the server refused and closed early: that is the point
                break
        response = b""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            response = await asyncio.wait_for(reader.read(65536), timeout)
            while True:
                more = await asyncio.wait_for(reader.read(65536), timeout)
                if not more:
                    break
                response += more
        return response
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _chunked(body: bytes, size: int = 64 * 1024) -> list[bytes]:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return parts + [b"0\r\n\r\n"]


@contextlib.asynccontextmanager
async def uvicorn_like_main(settings, **app_options):
    """The app behind uvicorn configured as `python main.py` configures it (web/server_timeouts.py)."""
    import uvicorn

    from web.server_timeouts import uvicorn_options

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(settings, **app_options), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on", **uvicorn_options(settings)))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


SMUGGLE_HEAD = (b"POST /api/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n")
# Valid JSON the endpoint would accept and record: only its size (whitespace) is wrong.
SMUGGLED = b'{"event_type": "smuggled", "user_consent": true' + b" " * (MAX_BODY_BYTES + 50_000) + b"}"


@pytest.mark.slow  # live uvicorn servers and a raw socket: the framing must be the server's, not a test client's
async def test_h1_a_small_content_length_cannot_smuggle_a_large_chunked_body(tmp_path):
    # h11 (the parser `python main.py` runs) reads the chunked body despite `Content-Length: 20`: the
    # counted bytes must refuse it. (httptools, when installed, refuses the mixed framing itself with a 400.)
    async with uvicorn_like_main(quick_settings(tmp_path / "h11")) as (base_url, server):
        assert issubclass(server.config.http_protocol_class, TimedH11Protocol)
        response = await _raw_exchange(base_url, SMUGGLE_HEAD, _chunked(SMUGGLED))
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"larger than" in response
    # and the test helpers' server (uvicorn's default parser here, whichever is installed): refused too
    async with served_app(quick_settings(tmp_path / "auto")) as (base_url, app):
        response = await _raw_exchange(base_url, SMUGGLE_HEAD, _chunked(SMUGGLED))
        assert response.startswith((b"HTTP/1.1 413", b"HTTP/1.1 400")), response[:200]
        assert await app.state.services.database[TELEMETRY].count_documents({"event_type": "smuggled"}) == 0
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:  # the server keeps serving
            assert (await client.get("/health")).status_code == 200


# --- H2/M5: failed key checks are throttled per client address; trusted proxies only ---------------

async def test_h2_failed_key_checks_are_throttled_per_client_ip_on_every_keyed_endpoint(tmp_path):
    settings = prod_settings(tmp_path, rate_limit_key_failures=3, rate_limit_chat=0)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    async with running_app(settings) as client:
        (good,) = await add_keys(client, 1)
        failures = [
            await client.post("/api/chat", json={"message": "hi", "magic_key": "guess-1"}),
            await client.get("/v1/models", headers={"Authorization": "Bearer guess-2"}),
            await client.get("/api/conversations/abcdefgh12", headers={"X-Magic-Key": "guess-3"}),
        ]
        assert [r.status_code for r in failures] == [403, 403, 403]
        # spent: every key check from this address is a 429 now, the right key included (no oracle)
        refused = [
            await client.post("/api/chat", json={"message": "hi", "magic_key": good}),
            await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {good}"}),
            await client.get(f"/v1/models/{MODEL}", headers={"Authorization": f"Bearer {good}"}),
            await client.get("/v1/models"),
            await client.post("/api/feedback", json={"span_id": "0" * 16, "feedback_type": "thumbs_up",
                                                     "magic_key": good}),
        ]
        assert [r.status_code for r in refused] == [429] * 5
        assert "Too many requests" in refused[0].json()["detail"] and refused[0].headers["retry-after"]
        assert refused[1].json()["error"]["code"] == "rate_limit_exceeded"  # OpenAI's shape on /v1
        assert refused[3].json()["error"]["type"] == "rate_limit_error"
        metrics = client.app.state.services.metrics.render().decode()
        assert 'rate_limited_requests_total{limit="key_failures"} 5.0' in metrics


async def test_h2_key_failure_window_resets_and_counts_only_failures(tmp_path):
    now = [1000.0]
    settings = prod_settings(tmp_path, rate_limit_key_failures=2, rate_limit_window_seconds=60)
    async with running_app(settings, clock=lambda: now[0]) as client:
        (good,) = await add_keys(client, 1)
        for _ in range(5):  # successes cost nothing
            assert (await client.get("/v1/models", headers={"Authorization": f"Bearer {good}"})).status_code == 200
        assert (await client.get("/v1/models")).status_code == 401
        assert (await client.get("/v1/models", headers={"Authorization": "Bearer nope"})).status_code == 403
        assert (await client.get("/v1/models", headers={"Authorization": f"Bearer {good}"})).status_code == 429
        now[0] += 61
        assert (await client.get("/v1/models", headers={"Authorization": f"Bearer {good}"})).status_code == 200


async def test_m5_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path):
    # The in-process client's address is 127.0.0.1: trusted here, so each forwarded client has its own budget.
    settings = prod_settings(tmp_path / "trusted", rate_limit_key_failures=1, trusted_proxies=["127.0.0.0/8"])
    async with running_app(settings) as client:
        def probe(xff: str):
            return client.get("/v1/models", headers={"Authorization": "Bearer nope", "X-Forwarded-For": xff})
        assert (await probe("198.51.100.7")).status_code == 403
        assert (await probe("198.51.100.7")).status_code == 429
        assert (await probe("203.0.113.9")).status_code == 403  # another client behind the proxy
        # a client cannot escape by writing its own left-most entry: the proxy appended the real one
        assert (await probe("192.0.2.1, 198.51.100.7")).status_code == 429
    # Without TRUSTED_PROXIES the header is ignored: one budget for the peer, whatever it claims.
    async with running_app(prod_settings(tmp_path / "untrusted", rate_limit_key_failures=1)) as client:
        first = await client.get("/v1/models", headers={"Authorization": "Bearer x", "X-Forwarded-For": "198.51.100.7"})
        second = await client.get("/v1/models", headers={"Authorization": "Bearer x", "X-Forwarded-For": "203.0.113.9"})
        assert (first.status_code, second.status_code) == (403, 429)


def test_m5_client_ip_resolution():
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_ip("203.0.113.5", ["1.2.3.4"], proxies) == "203.0.113.5"  # untrusted peer: header ignored
    assert client_ip("10.0.0.2", ["1.2.3.4"], proxies) == "1.2.3.4"
    assert client_ip("10.0.0.2", ["6.6.6.6, 1.2.3.4, 10.0.0.9"], proxies) == "1.2.3.4"  # right-most untrusted
    assert client_ip("10.0.0.2", ["6.6.6.6", "1.2.3.4"], proxies) == "1.2.3.4"  # several header lines
    assert client_ip("10.0.0.2", ["not-an-ip, 1.2.3.4"], proxies) == "1.2.3.4"
    assert client_ip("10.0.0.2", ["1.2.3.4, garbage"], proxies) == "10.0.0.2"  # garbage from the proxy: the peer
    assert client_ip("10.0.0.2", [], proxies) == "10.0.0.2"
    assert client_ip("10.0.0.2", ["10.1.1.1"], proxies) == "10.1.1.1"  # all trusted: the left-most
    assert client_ip("10.0.0.2", ["1.2.3.4"], []) == "10.0.0.2"


def test_m5_unknown_keys_have_no_bucket_of_their_own():
    limits = RateLimits(chat=1, feedback=1, window_seconds=60, key_failures=1)
    limits.admit("key_failures", magic_key=None, client_ip="198.51.100.7")
    with pytest.raises(Exception) as refused:
        limits.refuse_if_spent("key_failures", client_ip="198.51.100.7")
    assert refused.value.status == 429
    limits.refuse_if_spent("key_failures", client_ip="203.0.113.9")  # another address: not spent


# --- M1: conversations are bound to their key -------------------------------------------------------

async def test_m1_conversations_are_bound_to_the_key_that_created_them(tmp_path):
    async with running_app(prod_settings(tmp_path)) as client:
        alice, bob = await add_keys(client, 2)
        status, lines = await chat_lines(client, {"message": "What is Semantic Kernel?", "magic_key": alice})
        assert status == 200 and lines[-1]["type"] == "complete"
        conversation_id = lines[0]["conversation_id"]
        stored = await client.app.state.services.database[CONVERSATIONS].find_one({"_id": conversation_id})
        assert stored["owner"] and alice not in str(stored)  # a hash of the key, never the key

        path = f"/api/conversations/{conversation_id}"
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers={"X-Magic-Key": bob})).status_code == 404
        assert (await client.get(path, headers={"X-Magic-Key": "not-a-key"})).status_code == 403
        mine = await client.get(path, headers={"X-Magic-Key": alice})
        assert mine.status_code == 200 and mine.json()["turns"][0]["user"] == "What is Semantic Kernel?"
        assert (await client.get(path, headers={"Authorization": f"Bearer {alice}"})).status_code == 200

        # continuing someone else's conversation, or one the server never issued: 404 before any streaming
        theirs = await client.post("/api/chat", json={"message": "More?", "magic_key": bob, "conversation_id": conversation_id})
        invented = await client.post("/api/chat", json={"message": "Hi", "magic_key": alice,
                                                        "conversation_id": "my-own-id-123"})
        assert theirs.status_code == 404 and invented.status_code == 404
        assert theirs.headers["content-type"].startswith("application/json")
        status, more = await chat_lines(client, {"message": "And plugins?", "magic_key": alice,
                                                 "conversation_id": conversation_id})
        assert status == 200 and more[0]["conversation_id"] == conversation_id
        stored = await client.app.state.services.database[CONVERSATIONS].find_one({"_id": conversation_id})
        assert len(stored["turns"]) == 2 and await client.app.state.services.database[CONVERSATIONS].count_documents({}) == 1


async def test_m1_development_keeps_open_conversations_and_client_chosen_ids(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        status, lines = await chat_lines(client, {"message": "Hi", "conversation_id": "my-own-id-123"})
        assert status == 200 and lines[0]["conversation_id"] == "my-own-id-123"
        assert (await client.get("/api/conversations/my-own-id-123")).status_code == 200


# --- M3: feedback needs the key and a span issued to it ---------------------------------------------

async def test_m3_production_feedback_needs_the_key_the_answer_was_given_to(tmp_path):
    async with running_app(prod_settings(tmp_path)) as client:
        alice, bob = await add_keys(client, 2)
        _, lines = await chat_lines(client, {"message": "What is ML.NET?", "magic_key": alice})
        span_id = lines[0]["span_id"]
        website = {"span_id": span_id, "feedback_type": "thumbs_up", "comment": "good"}  # what the site sends

        assert (await client.post("/api/feedback", json=website)).status_code == 401
        assert (await client.post("/api/feedback", json={**website, "magic_key": bob})).status_code == 404
        unknown = {**website, "span_id": "0123456789abcdef", "magic_key": alice}
        assert (await client.post("/api/feedback", json=unknown)).status_code == 404
        assert await client.app.state.services.database[FEEDBACK].count_documents({}) == 0
        assert (await client.post("/api/feedback", json={**website, "magic_key": alice})).status_code == 200
        in_header = await client.post("/api/feedback", json={**website, "feedback_type": "thumbs_down"},
                                      headers={"X-Magic-Key": alice})
        assert in_header.status_code == 200
        row = await client.app.state.services.database[FEEDBACK].find_one({"_id": span_id})
        assert row["feedback_type"] == "thumbs_down" and row["conversation_id"] == lines[0]["conversation_id"]


async def test_m3_development_accepts_the_websites_feedback_as_before(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        response = await client.post("/api/feedback", json={"span_id": "0123456789abcdef", "feedback_type": "thumbs_up",
                                                            "comment": "nice"})
        assert response.status_code == 200


# --- M2 / L2: telemetry is limited, capped, expires, and checks its timestamp -------------------------

async def test_m2_telemetry_is_rate_limited_per_client_ip(tmp_path):
    async with running_app(quick_settings(tmp_path, rate_limit_telemetry=2)) as client:
        event = {"event_type": "page_view", "user_consent": True}
        assert [(await client.post("/api/telemetry", json=event)).status_code for _ in range(3)] == [200, 200, 429]


async def test_m2_telemetry_stops_storing_at_the_row_cap(tmp_path):
    async with running_app(quick_settings(tmp_path, telemetry_max_rows=2)) as client:
        event = {"event_type": "page_view", "user_consent": True}
        answers = [(await client.post("/api/telemetry", json=event)) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.json()["recorded"] for a in answers] == [True, True, False]
        assert "full" in answers[-1].json()["message"]
        assert await client.app.state.services.database[TELEMETRY].count_documents({}) == 2


async def test_m2_telemetry_older_than_the_retention_is_deleted(tmp_path):
    settings = quick_settings(tmp_path, telemetry_retention_days=30)
    now = dt.datetime.now(dt.timezone.utc)
    async with running_app(settings) as client:
        telemetry = client.app.state.services.database[TELEMETRY]
        await telemetry.insert_many([{"event_type": "old", "received_at": now - dt.timedelta(days=31)},
                                     {"event_type": "recent", "received_at": now - dt.timedelta(days=29)}])
    async with running_app(settings) as client:  # the next start applies the retention
        telemetry = client.app.state.services.database[TELEMETRY]
        assert [d["event_type"] for d in await telemetry.find({}).to_list()] == ["recent"]
        indexes = await telemetry.index_information()
        assert any(spec["key"] == [("received_at", 1)] for spec in indexes.values())


async def test_l2_absurd_telemetry_timestamps_are_422_not_500(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        for timestamp in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1970-01-01T00:00:00Z",
                          "2150-01-01T00:00:00Z"):
            response = await client.post("/api/telemetry", json={"event_type": "x", "timestamp": timestamp,
                                                                 "user_consent": True})
            assert response.status_code == 422, (timestamp, response.status_code, response.text[:200])
        fine = await client.post("/api/telemetry", json={"event_type": "x", "timestamp": "2026-01-02T03:04:05+14:00",
                                                         "user_consent": True})
        assert fine.status_code == 200 and fine.json()["recorded"] is True
        (doc,) = await client.app.state.services.database[TELEMETRY].find({}).to_list()
        assert doc["client_timestamp"] == dt.datetime(2026, 1, 1, 13, 4, 5, tzinfo=dt.timezone.utc)


# --- L3: metrics and docs ---------------------------------------------------------------------------

async def test_l3_production_metrics_are_hidden_unless_public_or_token(tmp_path):
    async with running_app(prod_settings(tmp_path / "a")) as client:
        assert (await client.get("/metrics")).status_code == 404
    async with running_app(prod_settings(tmp_path / "b", metrics_public=True)) as client:
        assert (await client.get("/metrics")).status_code == 200
    async with running_app(prod_settings(tmp_path / "c", metrics_token="scrape-token-123")) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
        assert ok.status_code == 200 and "http_requests_total" in ok.text
    async with running_app(quick_settings(tmp_path / "d")) as client:  # development: open
        assert (await client.get("/metrics")).status_code == 200


async def test_l3_docs_can_be_turned_off(tmp_path):
    async with running_app(quick_settings(tmp_path / "off", docs_enabled=False)) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/api")).status_code == 200  # the endpoint map still works
    async with running_app(quick_settings(tmp_path / "on")) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


# --- L1: deep JSON nesting ---------------------------------------------------------------------------

async def test_l1_deeply_nested_json_is_a_clear_400(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        for path in ("/api/chat", "/v1/chat/completions"):
            for raw in (b"[" * 1100, b'{"message": "hi", "history": ' + b"[" * 1100 + b"]" * 1100 + b"}"):
                response = await client.post(path, content=raw, headers={"content-type": "application/json"})
                assert response.status_code == 400, (path, response.status_code)
                assert "nested too deeply" in response.text and "Traceback" not in response.text
                if path.startswith("/v1/"):
                    assert response.json()["error"]["type"] == "invalid_request_error"
        assert (await client.get("/health")).status_code == 200


# --- L4: a non-streamed /v1 answer stops when its client hangs up -------------------------------------

@pytest.mark.slow  # a live uvicorn server: a real hang-up
async def test_l4_non_streaming_completion_is_cancelled_when_the_client_disconnects(tmp_path):
    model, started, cancelled = hanging_scripted_model()
    async with served_app(quick_settings(tmp_path), model=model) as (base_url, _app):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            request = asyncio.create_task(client.post("/v1/chat/completions", json={
                "model": MODEL, "messages": [{"role": "user", "content": "hello"}]}))
            await asyncio.wait_for(started.wait(), 30)
            request.cancel()  # hangs up while the model is still working
            with contextlib.suppress(asyncio.CancelledError):
                await request
        await asyncio.wait_for(cancelled.wait(), 10)
        await assert_no_run_left()


# --- L5: slow clients are dropped -----------------------------------------------------------------

@pytest.mark.slow  # a live uvicorn server and raw sockets
async def test_l5_a_body_that_never_finishes_is_a_408(tmp_path):
    async with served_app(quick_settings(tmp_path, body_read_timeout_seconds=1)) as (base_url, _app):
        head = (b"POST /api/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n")
        response = await asyncio.wait_for(_raw_exchange(base_url, head, [b'{"event_type"'], timeout=10), 15)
        assert response.startswith(b"HTTP/1.1 408"), response[:200]


@pytest.mark.slow  # a live uvicorn server configured like `python main.py`, and a raw socket
async def test_l5_headers_that_never_finish_are_dropped(tmp_path):
    async with uvicorn_like_main(quick_settings(tmp_path, body_read_timeout_seconds=1)) as (base_url, _server):
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and the rest never comes
        await writer.drain()
        loop = asyncio.get_running_loop()
        begun = loop.time()
        answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        assert answer.startswith(b"HTTP/1.1 408") and loop.time() - begun < 5
        writer.close()
        # a normal request on a new connection is served as usual
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            assert (await client.get("/health")).status_code == 200


# --- L6: RSS links never come from the Host header ------------------------------------------------

NEWS_DOC = {"documentId": "n1", "title": "Item", "content": "text", "sourceUrl": "https://example.org/a",
            "publishedDate": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            "rss_feed_url": "https://example.org/feed", "rss_item_id": "guid-1"}


def _rss_links(content: bytes) -> tuple[str, str]:
    channel = ET.fromstring(content).find("channel")
    self_link = channel.find("{http://www.w3.org/2005/Atom}link").get("href")
    return channel.findtext("link"), self_link


async def test_l6_rss_links_come_from_public_base_url_not_the_host_header(tmp_path):
    settings = quick_settings(tmp_path / "a", public_base_url="https://buddy-api.example.com/")
    async with running_app(settings) as client:
        await client.app.state.services.database[NEWS].insert_one(dict(NEWS_DOC))
        response = await client.get("/api/news/rss", headers={"Host": "evil.example"})
        assert _rss_links(response.content) == ("https://buddy-api.example.com/",
                                                "https://buddy-api.example.com/api/news/rss")
        assert b"evil.example" not in response.content
    async with running_app(quick_settings(tmp_path / "b", port=8123)) as client:  # development default
        response = await client.get("/api/news/rss", headers={"Host": "evil.example"})
        assert _rss_links(response.content) == ("http://127.0.0.1:8123/", "http://127.0.0.1:8123/api/news/rss")


# --- L7: only http(s) links are stored or served ------------------------------------------------------

async def test_l7_stored_non_http_links_are_not_served(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        database = client.app.state.services.database
        await database[NEWS].insert_one({**NEWS_DOC, "sourceUrl": "javascript:alert(1)", "rss_feed_url": "data:x,y"})
        await database[SAMPLES].insert_one({"id": "bad-links", "title": "T", "authorUrl": "javascript:alert(1)",
                                            "source": " JAVA\tSCRIPT:alert(1)", "preview": "javascript:alert(1)"})
        await database[SAMPLES].insert_one({"id": "code-preview", "title": "C", "preview": "Note: using System;",
                                            "authorUrl": "https://github.com/dotnet", "source": "https://github.com/x"})
        (item,) = (await client.get("/api/news")).json()["news"]
        assert item["url"] is None
        rss = (await client.get("/api/news/rss")).content
        assert b"javascript" not in rss and b"data:x" not in rss
        bad = (await client.get("/api/samples/bad-links")).json()
        assert (bad["authorUrl"], bad["source"], bad["preview"]) == ("", "", "")
        good = (await client.get("/api/samples/code-preview")).json()
        assert (good["authorUrl"], good["preview"]) == ("https://github.com/dotnet", "Note: using System;")


def test_l7_ingestion_keeps_only_http_links():
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><link>javascript:alert(1)</link>
      <item><title>A</title><link>javascript:alert(1)</link><guid>g-1</guid></item>
      <item><title>B</title><link>https://example.org/b</link><guid>g-2</guid></item></channel></rss>"""
    result = parse_feed(feed, name="feed.xml", feed_url="data:text/html,x")
    assert [item.get("sourceUrl") for item in result.items] == [None, "https://example.org/b"]
    assert all("rss_feed_url" not in item for item in result.items)
    for field in ("authorUrl", "source"):
        with pytest.raises(SampleError, match=field):
            validate_sample({"id": "s", "title": "T", field: "javascript:alert(1)"})
    with pytest.raises(SampleError, match="preview"):
        validate_sample({"id": "s", "title": "T", "preview": "javascript:alert(1)"})
    ok = validate_sample({"id": "s", "title": "T", "authorUrl": " https://github.com/x ", "preview": "var x = 1;"})
    assert ok["authorUrl"] == "https://github.com/x"
    sources = ToolResult(tool="t", results=[{"url": "javascript:alert(1)", "title": "x"},
                                            {"url": "https://learn.microsoft.com/a", "title": "ok"}]).sources
    assert [s.url for s in sources] == ["https://learn.microsoft.com/a"]


# --- sample ids with a slash -------------------------------------------------------------------------

async def test_sample_ids_with_a_slash_can_be_fetched(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        await client.app.state.services.database[SAMPLES].insert_one({"id": "dotnet/ai-samples", "title": "Repo"})
        response = await client.get("/api/samples/dotnet/ai-samples")
        assert response.status_code == 200 and response.json()["id"] == "dotnet/ai-samples"
        assert (await client.get("/api/samples/tags")).status_code == 200  # still the tag list
        assert (await client.get("/api/samples/dotnet/missing")).status_code == 404
