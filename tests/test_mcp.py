"""MCP servers: a real mcp 2.x server on 127.0.0.1 (streamable HTTP, /mcp) used by the agent through /api/chat.

`python -m tests.test_mcp serve PORT` runs the stand-in docs server; the tests start it in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.utils.net import free_port

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
QUESTION = "How do I stream chat responses with IChatClient GetStreamingResponseAsync?"
DOCS = [
    {"title": "Build an AI chat app with .NET: stream responses",
     "contentUrl": "https://learn.microsoft.com/en-us/dotnet/ai/quickstarts/build-chat-app#stream-responses",
     "content": "Call GetStreamingResponseAsync on IChatClient to stream chat responses token by token. "
                "Each ChatResponseUpdate carries the text generated so far, so the app can print it as it arrives."},
    {"title": "IChatClient interface (Microsoft.Extensions.AI)",
     "contentUrl": "https://learn.microsoft.com/en-us/dotnet/api/microsoft.extensions.ai.ichatclient",
     "content": "IChatClient represents a chat client. GetResponseAsync returns a complete ChatResponse, while "
                "GetStreamingResponseAsync returns the response as an asynchronous stream of updates."},
    {"title": "Train a model with ML.NET AutoML",
     "contentUrl": "https://learn.microsoft.com/en-us/dotnet/machine-learning/automate-training-with-model-builder",
     "content": "AutoML explores trainers and hyperparameters to find a good model for your data."},
]


# ---------------------------------------------------------------- the stand-in MCP server (subprocess side)

def _serve(port: int) -> None:
    """A Microsoft Learn–like docs server; GET /stats reports connections opened and tool calls made."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    stats = {"connections": 0, "calls": 0}
    server = MCPServer("learn-standin", log_level="WARNING")

    @server.tool()
    def microsoft_docs_search(query: str) -> str:
        """Search official Microsoft/Azure documentation and return matching excerpts."""
        stats["calls"] += 1
        words = {w.lower() for w in re.findall(r"\w+", query) if len(w) > 4}
        hits = [d for d in DOCS if words & {w.lower() for w in re.findall(r"\w+", d["title"] + " " + d["content"])}]
        return json.dumps({"results": hits})

    app = server.streamable_http_app(host="127.0.0.1")

    async def counting(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/stats":
            body = json.dumps(stats).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        # A new client connection is the handshake: `server/discover` in the 2026 stateless protocol that
        # mcp 2.x speaks, `initialize` (sent before any session id exists) in the older one.
        headers = {k.lower(): v for k, v in scope.get("headers", [])} if scope["type"] == "http" else {}
        if scope["type"] == "http" and scope["method"] == "POST" and b"mcp-session-id" not in headers and \
                headers.get(b"mcp-method", b"initialize") in (b"initialize", b"server/discover"):
            stats["connections"] += 1
        await app(scope, receive, send)

    uvicorn.run(counting, host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------- helpers (test side)

def _stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def docs_server(port: int | None = None):
    """Start the stand-in MCP server in a subprocess (on `port`, else a free one); yields (url, port, process)."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.test_mcp", "serve", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _stats(port)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP stand-in did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def learn_server():
    with docs_server() as server:
        yield server


@pytest.fixture
def app_settings(tmp_path, seeded_data_dir):
    """Development settings on the seeded data with MCP servers; NuGet points at a closed local port."""
    from tests.nuget_standin import closed_port_url
    from tests.utils.app import copy_seeded_data_dir, make_settings

    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    closed = closed_port_url()
    return lambda **overrides: make_settings(
        tmp_path, nuget_search_urls=[f"{closed}/query"], nuget_registration_url=f"{closed}/registration/",
        nuget_flat_container_url=f"{closed}/flat/", **overrides)


# ---------------------------------------------------------------- tests

@pytest.mark.slow  # the stand-in MCP server runs in a subprocess
async def test_agent_calls_the_mcp_tool_and_cites_its_sources(app_settings, learn_server):
    from tests.utils.app import answer_text, chat_lines, running_app

    url, port, _ = learn_server
    before = _stats(port)
    settings = app_settings(mcp_servers=[{"name": "microsoft_learn", "url": url}])
    async with running_app(settings) as client:
        _, first = await chat_lines(client, {"message": QUESTION})
        _, second = await chat_lines(client, {"message": "Does GetStreamingResponseAsync work with IChatClient middleware?"})
    after = _stats(port)

    assert first[-1]["type"] == "complete" and second[-1]["type"] == "complete"
    call = next(line for line in first if line["type"] == "tool_call" and line["name"] == "microsoft_docs_search")
    assert json.loads(call["arguments"])["query"] and "microsoft docs search" in call["content"]
    output = next(line for line in first if line["type"] == "tool output" and line["name"] == "microsoft_docs_search")
    mcp_urls = {s["url"] for s in output["sources"]}
    assert mcp_urls == {DOCS[0]["contentUrl"], DOCS[1]["contentUrl"]}
    assert {s["title"] for s in output["sources"]} == {DOCS[0]["title"], DOCS[1]["title"]}

    answer = answer_text(first)
    cited = {u for _, u in LINK.findall(answer)}
    returned = {s["url"] for line in first if line["type"] == "tool output" for s in line["sources"]}
    assert cited <= returned and cited & mcp_urls, answer
    assert "GetStreamingResponseAsync" in answer

    # One connection for the app's life, however many chats use it.
    assert after["calls"] - before["calls"] == 2
    assert after["connections"] - before["connections"] == 1


@pytest.mark.slow  # the stand-in MCP server runs in a subprocess
async def test_a_down_or_hanging_server_is_skipped_with_a_warning(app_settings, learn_server, caplog):
    import asyncio

    from tests.nuget_standin import closed_port_url
    from tests.utils.app import answer_text, chat_lines, running_app

    async def silent(reader, writer):  # accepts the connection, never answers
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await reader.read()  # until the client gives up and closes
        writer.close()

    hanging = await asyncio.start_server(silent, "127.0.0.1", 0)
    hang_port = hanging.sockets[0].getsockname()[1]
    url, _, _ = learn_server
    settings = app_settings(mcp_servers=[{"name": "down_docs", "url": f"{closed_port_url()}/mcp"},
                                         {"name": "hanging_docs", "url": f"http://127.0.0.1:{hang_port}/mcp"},
                                         {"name": "microsoft_learn", "url": url}],
                            mcp_connect_timeout_seconds=1.0)
    caplog.set_level(logging.INFO, logger="services.agent.mcp")
    started = time.monotonic()
    try:
        async with running_app(settings) as client:
            startup = time.monotonic() - started
            _, lines = await chat_lines(client, {"message": QUESTION})
    finally:
        hanging.close()
        await hanging.wait_closed()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'down_docs'" in w and "skipped" in w for w in warnings), warnings
    assert any("'hanging_docs'" in w and "skipped" in w for w in warnings), warnings
    connected = [r.getMessage() for r in caplog.records if "connected with tools" in r.getMessage()]
    assert connected == ["MCP server 'microsoft_learn' connected with tools: microsoft_docs_search"]
    assert startup < 15  # connects run in parallel, each bounded by the connect timeout
    assert lines[-1]["type"] == "complete"
    assert any(line["type"] == "tool output" and line["name"] == "microsoft_docs_search" and line["sources"]
               for line in lines)
    assert "learn.microsoft.com" in answer_text(lines)


@pytest.mark.slow  # the stand-in MCP server runs in a subprocess
async def test_server_dying_after_startup_does_not_break_the_chat(app_settings):
    from tests.utils.app import answer_text, chat_lines, running_app

    with docs_server() as (url, _, process):
        settings = app_settings(mcp_servers=[{"name": "microsoft_learn", "url": url}], mcp_timeout_seconds=3.0)
        async with running_app(settings) as client:
            process.kill()
            process.wait()
            started = time.monotonic()
            _, lines = await chat_lines(client, {"message": QUESTION})
            elapsed = time.monotonic() - started
    types = [line["type"] for line in lines]
    assert types[-1] == "complete" and "error" not in types
    output = next(line for line in lines if line["type"] == "tool output" and line["name"] == "microsoft_docs_search")
    assert output["sources"] == []
    # the knowledge-base part of the answer still comes through, citing only what the KB returned
    kb_urls = {s["url"] for line in lines if line["type"] == "tool output" and line["name"] == "search_knowledge_base"
               for s in line["sources"]}
    cited = {url for _, url in LINK.findall(answer_text(lines))}
    assert (cited and cited <= kb_urls) or "I don't know" in answer_text(lines)
    assert elapsed < 10


@pytest.mark.slow  # the stand-in MCP server runs in a subprocess
async def test_a_server_that_dies_leaves_the_agent_and_rejoins_when_it_is_back(app_settings, caplog):
    import asyncio

    from tests.utils.app import chat_lines, running_app

    async def wait_for(condition, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    port = free_port()
    settings = app_settings(mcp_servers=[{"name": "microsoft_learn", "url": f"http://127.0.0.1:{port}/mcp"}],
                            mcp_timeout_seconds=2.0, mcp_connect_timeout_seconds=2.0, mcp_health_seconds=0.3,
                            mcp_retry_seconds=0.3, mcp_retry_max_seconds=1.0)
    caplog.set_level(logging.INFO, logger="services.agent.mcp")
    with docs_server(port) as (_, _, process):
        async with running_app(settings) as client:
            agent = client.app.state.services.chat.agent
            assert [server.name for server in agent.mcp_servers] == ["microsoft_learn"]
            process.kill()  # the docs server's process dies; its session cannot come back by itself
            process.wait()
            await wait_for(lambda: not agent.mcp_servers)  # the next ping notices: its tools leave the agent
            started = time.monotonic()
            _, during = await chat_lines(client, {"message": QUESTION})
            during_seconds = time.monotonic() - started
            with docs_server(port):  # back on the same address: a new process, a new MCP session
                await wait_for(lambda: [server.name for server in agent.mcp_servers] == ["microsoft_learn"])
                _, after = await chat_lines(client, {"message": QUESTION})
                stats = _stats(port)
    assert during[-1]["type"] == "complete" and "error" not in [line["type"] for line in during]
    assert {line["name"] for line in during if line["type"] == "tool_call"} <= {"search_knowledge_base",
                                                                              "read_kb_article"}
    assert during_seconds < 5  # no waiting on the dead server's tool
    assert after[-1]["type"] == "complete"
    output = next(line for line in after if line["type"] == "tool output" and line["name"] == "microsoft_docs_search")
    assert {s["url"] for s in output["sources"]} == {DOCS[0]["contentUrl"], DOCS[1]["contentUrl"]}
    assert stats["calls"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert "MCP server 'microsoft_learn' stopped answering; its tools leave the agent until it is reconnected" in messages
    assert "MCP server 'microsoft_learn' is up now; its tools join the agent from the next chat" in messages


@pytest.mark.slow  # the stand-in MCP server runs in a subprocess
async def test_a_server_down_at_start_joins_the_agent_when_it_comes_up(app_settings, caplog):
    import asyncio

    from tests.utils.app import chat_lines, running_app

    port = free_port()  # nothing listens there yet
    settings = app_settings(mcp_servers=[{"name": "microsoft_learn", "url": f"http://127.0.0.1:{port}/mcp"}],
                            mcp_connect_timeout_seconds=2.0, mcp_retry_seconds=0.3, mcp_retry_max_seconds=1.0)
    caplog.set_level(logging.INFO, logger="services.agent.mcp")
    async with running_app(settings) as client:
        agent = client.app.state.services.chat.agent
        _, before = await chat_lines(client, {"message": QUESTION})
        assert {line["name"] for line in before if line["type"] == "tool_call"} == {"search_knowledge_base",
                                                                                   "read_kb_article"}
        with docs_server(port) as (_, _, _):
            for _ in range(300):  # the next retry (at most MCP_RETRY_MAX_SECONDS away) connects it
                if agent.mcp_servers:
                    break
                await asyncio.sleep(0.1)
            assert [server.name for server in agent.mcp_servers] == ["microsoft_learn"]
            _, after = await chat_lines(client, {"message": QUESTION})
            stats = _stats(port)
    assert after[-1]["type"] == "complete"
    output = next(line for line in after if line["type"] == "tool output" and line["name"] == "microsoft_docs_search")
    assert {s["url"] for s in output["sources"]} == {DOCS[0]["contentUrl"], DOCS[1]["contentUrl"]}
    assert stats["calls"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("'microsoft_learn'" in m and "retrying in the background" in m for m in messages), messages
    assert "MCP server 'microsoft_learn' is up now; its tools join the agent from the next chat" in messages


async def test_no_servers_configured_means_no_mcp_tools(app_settings):
    from tests.utils.app import chat_lines, running_app

    async with running_app(app_settings(mcp_servers=[])) as client:
        _, lines = await chat_lines(client, {"message": QUESTION})
    # only our own knowledge-base tools: the search, then the offline model reading its best article
    assert {line["name"] for line in lines if line["type"] == "tool_call"} == {"search_knowledge_base", "read_kb_article"}
    assert lines[-1]["type"] == "complete"


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(int(sys.argv[2]))
