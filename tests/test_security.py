"""Hostile input and configuration: oversized bodies and lines are clean 4xx, production CORS allows
only the configured origins, and secrets never reach logs or responses."""

from __future__ import annotations

import contextlib
import json
import logging

import httpx
import pytest

from web.body_limit import MAX_BODY_BYTES
from services.storage.database import USERS
from tests.utils.app import chat_lines, free_port, quick_settings, running_app, served_app
from tests.utils.phoenix import eventually

SITE = "https://buddy.example.com"


def assert_clean_4xx(response: httpx.Response, *, echo: str = "x" * 64) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert len(response.content) < 4000  # a short message, never the submitted body back
    assert echo not in response.text
    assert "Traceback" not in response.text and "File \"" not in response.text


# --- oversized bodies -------------------------------------------------------------------------

async def test_oversized_chat_bodies_are_clean_4xx(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        # 1 MB of JSON, shaped like a valid request (50 history items of 20,000 characters): 413
        history = [{"role": "user", "content": "x" * 20_000}] * 50
        big = await client.post("/api/chat", json={"message": "hi", "history": history})
        assert_clean_4xx(big)
        assert big.status_code == 413 and "larger than" in big.json()["detail"]
        # 1 MB in one field
        assert (await client.post("/api/chat", json={"message": "x" * 1_000_000})).status_code == 413
        # a 100k-character message (~100 KB: under the body cap, over the field limit): 422
        long_message = await client.post("/api/chat", json={"message": "x" * 100_000})
        assert_clean_4xx(long_message)
        assert long_message.status_code == 422
        # 1,000 history items (under the body cap): accepted, trimmed to the history budget, answered
        many = await client.post("/api/chat", json={"message": "hi", "history": [{"role": "user", "content": "hey"}] * 1000})
        assert many.status_code == 200 and many.text.rstrip().endswith("}")
        assert [json.loads(line)["type"] for line in many.text.splitlines() if line.strip()][-1] == "complete"
        # pathological JSON: deep nesting, invalid UTF-8, a bare huge number
        for raw in (b'{"message": "hi", "history": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                    b'{"message": "\xff\xfe"}', b'{"message": 1' + b"0" * 100_000 + b"}"):
            response = await client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
            assert_clean_4xx(response)
        # the server is fine afterwards
        assert (await client.get("/health")).status_code == 200


async def test_bodies_over_the_cap_are_413_on_every_post_route_even_without_content_length(tmp_path):
    over = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"

    async def chunked():  # no Content-Length: the cap must hold while the body streams in
        for start in range(0, len(over), 64 * 1024):
            yield over[start:start + 64 * 1024]

    async with running_app(quick_settings(tmp_path, rate_limit_chat=5, rate_limit_feedback=5)) as client:
        for path in ("/api/chat", "/api/feedback", "/api/telemetry", "/v1/chat/completions"):
            declared = await client.post(path, content=over, headers={"content-type": "application/json"})
            streamed = await client.post(path, content=chunked(), headers={"content-type": "application/json"})
            for response in (declared, streamed):
                assert response.status_code == 413, (path, response.status_code, response.text[:200])
                assert_clean_4xx(response)
            if path.startswith("/v1/"):
                assert streamed.json()["error"]["code"] == "request_too_large"
        # just under the cap is parsed normally (and refused for its content, not its size)
        under = {"message": "hi", "history": [{"role": "user", "content": "y" * 19_000}] * 25}
        assert len(json.dumps(under)) < MAX_BODY_BYTES
        status, lines = await chat_lines(client, under)
        assert status == 200 and lines[-1]["type"] == "complete"


@pytest.mark.slow  # a live uvicorn server
async def test_oversized_request_lines_and_headers_over_real_http(tmp_path):
    """A real server (uvicorn): a 60 KB URL or header never costs a 5xx or unbounded work, and the server keeps serving."""
    async with served_app(quick_settings(tmp_path)) as (base_url, _app):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            for request in (client.build_request("GET", "/api/news", params={"search": "c" * 60_000}),
                            client.build_request("GET", "/health", headers={"x-filler": "h" * 60_000})):
                try:
                    response = await client.send(request)
                except httpx.RemoteProtocolError:  # the server may drop such a connection outright
                    continue
                # refused (4xx), or served with bounded work (the search is cut to 200 characters)
                assert response.status_code < 500 and len(response.content) < 4000
                assert "c" * 201 not in response.text
            # a long but sane search is cut to its first 200 characters, not refused
            ok = await client.get("/api/news", params={"search": "c" * 5000})
            assert ok.status_code == 200 and ok.json()["total"] == 0
            assert (await client.get("/health")).status_code == 200


# --- CORS -------------------------------------------------------------------------------------

def _preflight(origin: str) -> dict:
    return {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


async def test_production_cors_allows_only_configured_origins(tmp_path):
    settings = quick_settings(tmp_path, environment="production", cors_origins=[SITE])
    async with running_app(settings) as client:
        allowed = await client.options("/api/chat", headers=_preflight(SITE))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == SITE
        assert allowed.headers["access-control-allow-credentials"] == "true"
        for origin in ("https://evil.example", f"{SITE}.evil.example", "http://buddy.example.com", "null",
                       SITE.replace("buddy", "buddy2")):
            refused = await client.options("/api/chat", headers=_preflight(origin))
            assert refused.status_code == 400, origin
            assert "access-control-allow-origin" not in refused.headers, origin
            simple = await client.get("/health", headers={"Origin": origin})
            assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers, origin
        # error responses carry CORS headers for the site, so the page can read the 401/413
        unkeyed = await client.post("/api/chat", json={"message": "hi"}, headers={"Origin": SITE})
        assert unkeyed.status_code == 401 and unkeyed.headers["access-control-allow-origin"] == SITE
        huge = await client.post("/api/chat", content=b"x" * (MAX_BODY_BYTES + 1),
                                 headers={"Origin": SITE, "content-type": "application/json"})
        assert huge.status_code == 413 and huge.headers["access-control-allow-origin"] == SITE


async def test_production_without_origins_allows_none_and_development_allows_all(tmp_path):
    async with running_app(quick_settings(tmp_path / "prod", environment="production")) as client:
        response = await client.options("/api/chat", headers=_preflight(SITE))
        assert response.status_code == 400 and "access-control-allow-origin" not in response.headers
    async with running_app(quick_settings(tmp_path / "dev")) as client:
        response = await client.options("/api/chat", headers=_preflight("http://localhost:5173"))
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers  # never credentials with "*"


# --- secrets ----------------------------------------------------------------------------------

SECRETS = {
    "openai_api_key": "sk-proj-SECRETopenai7f3a9c",
    "arize_api_key": "SECRETarize51c2e8",
    "phoenix_api_key": "SECRETphoenix0d4b77",
}
MAGIC_KEY = "SECRETmagic9a8b7c6d"


def _assert_no_secret(text: str, where: str) -> None:
    for secret in (*SECRETS.values(), MAGIC_KEY):
        assert secret not in text, f"{secret} found in {where}"


@contextlib.contextmanager
def tracing_backend_standin():
    """A loopback stand-in for Phoenix on its own thread (the app's span flush at shutdown blocks the loop):
    takes spans, answers every annotation with 503, records the Authorization headers it was sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            seen.append(self.headers.get("Authorization", ""))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = 200 if self.path.startswith("/v1/traces") else 503
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_secrets_never_appear_in_responses_or_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: model-provider calls would fail, as in an outage
    responses: list[httpx.Response] = []
    with tracing_backend_standin() as (phoenix_url, auth_seen):
        settings = quick_settings(tmp_path, environment="production", cors_origins=[SITE], offline_model=True,
                                  openai_base_url=closed, phoenix_collector_endpoint=phoenix_url,
                                  feedback_retry_base_seconds=0.05, feedback_retry_max_seconds=0.1, **SECRETS)
        async with running_app(settings) as client:
            await client.app.state.services.database[USERS].insert_one({"_id": MAGIC_KEY})
            for method, path, body in (
                ("GET", "/health", None), ("GET", "/api", None), ("GET", "/api/config", None), ("GET", "/metrics", None),
                ("GET", "/openapi.json", None), ("GET", "/v1/models", None), ("GET", "/no-such-page", None),
                ("POST", "/api/chat", {"message": "hi"}),                                     # 401
                ("POST", "/api/chat", {"message": "hi", "magic_key": MAGIC_KEY + "x"}),        # 403
                ("POST", "/api/chat", {"message": "x" * 5000, "magic_key": MAGIC_KEY}),        # 422
                ("POST", "/api/chat", {"message": "hi", "magic_key": "k" * 201}),              # 422
                ("POST", "/api/feedback", {"span_id": "0123456789abcdef", "feedback_type": "thumbs_up"}),
                ("POST", "/api/telemetry", {"event_type": "page_view", "user_consent": True}),
                ("POST", "/v1/chat/completions", {"model": "x", "messages": [{"role": "user", "content": "hi"}]}),
            ):
                responses.append(await client.request(method, path, json=body, headers={"Origin": SITE}))
            status, lines = await chat_lines(client, {"message": "How do I stream with IChatClient?", "magic_key": MAGIC_KEY})
            assert status == 200 and lines[-1]["type"] == "complete"
            assert responses[0].json()["environment"] == "production"
            # production feedback: the key, on an answer given to that key (the keyless one above is a 401)
            span_id = lines[0]["span_id"]
            responses.append(await client.post("/api/feedback", json={"span_id": span_id, "feedback_type": "thumbs_up",
                                                                      "magic_key": MAGIC_KEY}))
            assert responses[-1].status_code == 200

            async def retried():  # the failing delivery is retried (and its errors logged) before we look
                row = await client.app.state.services.database["feedback"].find_one({"_id": span_id})
                return row["delivery"]["phoenix"]["attempts"] >= 2
            await eventually(retried, timeout=10)
    for response in responses:
        assert response.status_code < 500, (response.request.url, response.status_code)
        _assert_no_secret(response.text + json.dumps(dict(response.headers)), f"{response.request.url}")
    _assert_no_secret(json.dumps(lines), "the chat stream")
    _assert_no_secret(caplog.text, "the logs")
    _assert_no_secret(repr(settings) + str(settings), "repr(settings)")
    # the failure paths really ran, and the key really was sent where it belongs
    assert "not delivered" in caplog.text
    assert f"Bearer {SECRETS['phoenix_api_key']}" in auth_seen


async def test_mongodb_uri_password_is_not_logged_when_the_server_is_unreachable(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    password = "SECRETmongoPassw0rd"
    uri = f"mongodb://buddy:{password}@127.0.0.1:{free_port()}/?authSource=admin"
    settings = quick_settings(tmp_path, mongodb_uri=uri, store_timeout_seconds=0.5)
    with pytest.raises(Exception) as failure:
        async with running_app(settings):
            pass
    import traceback

    text = "".join(traceback.format_exception(failure.value))
    assert password not in text and password not in caplog.text
    assert password not in repr(settings)
