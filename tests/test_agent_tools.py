"""NuGet agent tools through the Runner and /api/chat, against the local NuGet stand-in; web search gating."""

from __future__ import annotations

import json
import re

import pytest
from agents import Runner, RunContextWrapper, WebSearchTool
from agents.testing import ScriptedModel, assistant_message, function_call

from services.agent.builder import ChatContext, build_agent
from services.agent.nuget_tools import agent_tools, get_nuget_package_details, nuget_client, search_nuget_packages
from tests.nuget_standin import closed_port_url, nuget_standin
from tests.utils.app import answer_text, chat_lines, copy_seeded_data_dir, make_settings, running_app

LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
PACKAGE_QUESTION = "What is the latest version of the Microsoft.Extensions.AI NuGet package?"


def _nuget_settings(base_url: str) -> dict:
    return {"nuget_search_urls": [f"{base_url}/query"], "nuget_registration_url": f"{base_url}/registration/",
            "nuget_flat_container_url": f"{base_url}/flat/", "nuget_timeout_seconds": 1.0,
            "enable_nuget": True}  # off by default in development


@pytest.fixture
def app_settings(tmp_path, seeded_data_dir):
    """Development settings on a private copy of the seeded data; NuGet URLs passed per test."""
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    return lambda **overrides: make_settings(tmp_path, **overrides)


async def test_package_question_calls_nuget_and_cites_its_urls(app_settings):
    async with nuget_standin("ok") as standin:
        async with running_app(app_settings(**_nuget_settings(standin.base_url))) as client:
            status, lines = await chat_lines(client, {"message": PACKAGE_QUESTION})
        searched = [r for r in standin.requests if r.path == "/query"]
    assert status == 200 and lines[-1]["type"] == "complete"
    assert searched and searched[0].query["q"] == "Microsoft.Extensions.AI"

    call = next(line for line in lines if line["type"] == "tool_call" and line["name"] == "search_nuget_packages")
    assert "Microsoft.Extensions.AI" in call["content"] and json.loads(call["arguments"])["query"]
    output = next(line for line in lines if line["type"] == "tool output" and line["name"] == "search_nuget_packages")
    nuget_urls = {s["url"] for s in output["sources"]}
    assert "https://www.nuget.org/packages/Microsoft.Extensions.AI/9.8.0" in nuget_urls
    assert all(url.startswith("https://www.nuget.org/packages/") for url in nuget_urls)

    answer = answer_text(lines)
    cited = {url for _, url in LINK.findall(answer)}
    returned = {s["url"] for line in lines if line["type"] == "tool output" for s in line["sources"]}
    assert cited <= returned, cited - returned  # never a link the tools did not return
    assert "https://www.nuget.org/packages/Microsoft.Extensions.AI/9.8.0" in cited
    assert "latest 9.8.0" in answer and "verified owner" in answer


async def test_both_nuget_endpoints_down_gives_a_sentence_not_a_crash(app_settings):
    async with nuget_standin("down500") as down:
        settings = app_settings(**{**_nuget_settings(down.base_url),
                                   "nuget_search_urls": [f"{closed_port_url()}/query", down.search_url]})
        async with running_app(settings) as client:
            status, lines = await chat_lines(client, {"message": PACKAGE_QUESTION})
        assert any(r.path == "/query" for r in down.requests)  # the secondary was tried after the primary
    types = [line["type"] for line in lines]
    assert status == 200 and types[0] == "metadata" and types[-1] == "complete" and "error" not in types
    output = next(line for line in lines if line["type"] == "tool output" and line["name"] == "search_nuget_packages")
    assert output["sources"] == []
    # the person is told, in a sentence on the tool's line, that NuGet is down and to try again
    assert "NuGet search is unavailable" in output["content"] and "try again" in output["content"].lower()
    answer = answer_text(lines)
    for text in (answer, json.dumps(lines)):
        assert "http://127.0.0.1" not in text and "Traceback" not in text
    assert "Microsoft.Extensions.AI" in answer  # the knowledge-base part of the answer still came through


def _context(client) -> ChatContext:
    return ChatContext(knowledge_base=None, nuget=client)  # type: ignore[arg-type]


def make_settings_stub():
    from services.core.settings import Settings

    return Settings(_env_file=None, environment="development")


async def _run_tool(nuget, tool, arguments: dict) -> dict:
    """Run one tool call through the real Runner (a scripted model decides the call) and return its output."""
    model = ScriptedModel([[function_call(tool.name, arguments, call_id="call_1")], [assistant_message("done")]])
    agent = build_agent(model=model, tools=[tool])
    result = await Runner.run(agent, "look it up", context=_context(nuget))
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert len(outputs) == 1
    return json.loads(outputs[0])


async def test_details_tool_returns_version_license_readme_and_nuget_url():
    import aiohttp

    async with nuget_standin("ok") as standin, aiohttp.ClientSession() as session:
        nuget = nuget_client(settings=make_settings_stub().model_copy(update=_nuget_settings(standin.base_url)),
                             session=session)
        details = await _run_tool(nuget, get_nuget_package_details, {"package_id": "Microsoft.Extensions.AI"})
        pinned = await _run_tool(nuget, get_nuget_package_details, {"package_id": "Microsoft.ML.OnnxRuntime",
                                                                    "version": "1.21.0"})
        missing = await _run_tool(nuget, get_nuget_package_details, {"package_id": "No.Such.Package"})
        bad = await _run_tool(nuget, get_nuget_package_details, {"package_id": "../../etc/passwd"})
        search = await _run_tool(nuget, search_nuget_packages, {"query": "openai", "take": 50})
    [meai] = details["results"]
    assert meai["version"] == "9.8.0" and meai["url"] == "https://www.nuget.org/packages/Microsoft.Extensions.AI/9.8.0"
    assert meai["license"] == "MIT" and meai["recent_versions"][0] == "10.0.0-rc.1.25451.107"
    assert any("Microsoft.Extensions.AI.Abstractions" in d for deps in meai["dependencies"].values() for d in deps)
    assert "dotnet add package Microsoft.Extensions.AI" in details["readme"] and "README" in details["text"]
    [onnx] = pinned["results"]
    assert onnx["version"] == "1.21.0" and onnx["license"].startswith("MIT License")  # embedded license file
    assert pinned["readme"] is None  # the package has no README: still a useful answer
    assert "was not found on NuGet" in missing["error"]
    assert "not a valid NuGet package ID" in bad["error"]
    ids = [r["id"] for r in search["results"]]
    assert ids and search["results"][0]["verified"] and "LangChain" not in ids[:1]
    assert all(r["url"].startswith("https://www.nuget.org/packages/") for r in search["results"])


async def test_tools_without_a_nuget_client_or_query_answer_with_an_error_sentence():
    empty = await _run_tool(None, search_nuget_packages, {"query": "semantic kernel"})
    assert empty == {"error": "NuGet lookups are not available on this server right now."}


@pytest.mark.parametrize("overrides, has_web_search", [
    ({"openai_api_key": "sk-test-key"}, True),                                        # OpenAI Responses
    ({"openai_api_key": "sk-test-key", "enable_web_search": False}, False),           # switched off
    ({"openai_api_key": "sk-test", "openai_base_url": "http://127.0.0.1:9/v1"}, False),  # compatible endpoint
    ({}, False),                                                                      # offline model
])
async def test_web_search_only_with_the_openai_responses_model(tmp_path, overrides, has_web_search):
    settings = make_settings(tmp_path, enable_nuget=True, **overrides)
    tools, instructions = agent_tools(settings)
    agent = build_agent(model=ScriptedModel([]), tools=tools, extra_instructions=instructions)
    prompt = await agent.get_system_prompt(RunContextWrapper(_context(None)))
    assert any(isinstance(t, WebSearchTool) for t in agent.tools) is has_web_search
    assert ("web search" in prompt.lower()) is has_web_search
    assert {"search_knowledge_base", "search_nuget_packages", "get_nuget_package_details"} <= {
        getattr(t, "name", "") for t in agent.tools}
    assert "search_nuget_packages" in prompt
