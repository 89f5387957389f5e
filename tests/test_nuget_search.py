"""Tests for nuget_search.NuGetClient against the local NuGet stand-in server."""
from __future__ import annotations

import time

import aiohttp
import pytest
import pytest_asyncio

from nuget_search import (
    DEFAULT_FLAT_CONTAINER_URL,
    DEFAULT_REGISTRATION_BASE_URL,
    DEFAULT_SEARCH_URLS,
    NuGetClient,
    NuGetError,
    NuGetNotFoundError,
    NuGetSearchResult,
    NuGetUnavailableError,
)
from services.agent.nuget_format import format_details_for_agent, format_search_for_agent
from tests.nuget_standin import NuGetStandin, closed_port_url, nuget_standin, start_nuget_standin, stop_nuget_standin

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest_asyncio.fixture
async def standin():
    async with nuget_standin() as server:
        yield server


@pytest_asyncio.fixture
async def secondary():
    async with nuget_standin() as server:
        yield server


def make_client(session: aiohttp.ClientSession, server: NuGetStandin, **overrides) -> NuGetClient:
    return NuGetClient(session=session, **{**server.client_kwargs(), **overrides})


def _last_query(server: NuGetStandin) -> dict[str, str]:
    return [r for r in server.requests if r.path == "/query"][-1].query


# --- search -----------------------------------------------------------------------------------


async def test_search_orders_verified_first_then_by_downloads(session, standin):
    result = await make_client(session, standin).search("openai", prerelease=True)

    assert isinstance(result, NuGetSearchResult)
    assert result.source_url == standin.search_url
    ids = [p.id for p in result.packages]
    # The stand-in answers in "relevance" order with unverified LangChain first; the client re-ranks.
    assert ids[0] != "LangChain" and "LangChain" in ids
    flags = [p.verified for p in result.packages]
    assert flags == sorted(flags, reverse=True), "verified packages must come first"
    for verified in (True, False):
        downloads = [p.total_downloads for p in result.packages if p.verified is verified]
        assert downloads == sorted(downloads, reverse=True)
    assert ids[-2:] == ["LangChain", "Contoso.OpenAI.Helpers"]
    langchain = next(p for p in result.packages if p.id == "LangChain")
    assert langchain.total_downloads > max(p.total_downloads for p in result.packages if p.verified)


async def test_search_passes_take_skip_prerelease_and_package_type(session, standin):
    client = make_client(session, standin)
    everything = await client.search("ai", take=100, prerelease=True)
    page = await client.search("ai", take=2, skip=1, prerelease=True, package_type="Dependency")

    assert _last_query(standin) == {
        "q": "ai", "take": "2", "skip": "1", "prerelease": "true", "semVerLevel": "2.0.0", "packageType": "Dependency"
    }
    assert len(page.packages) == 2
    assert page.total_hits == everything.total_hits - 1  # the Template package is filtered out by packageType

    await client.search("ai")
    assert _last_query(standin) == {"q": "ai", "take": "10", "skip": "0", "prerelease": "false", "semVerLevel": "2.0.0"}

    templates = await client.search("ai", prerelease=True, package_type="Template")
    assert [p.id for p in templates.packages] == ["Microsoft.Extensions.AI.Templates"]
    assert templates.packages[0].package_types == ["Template"]


async def test_search_prerelease_flag_controls_versions(session, standin):
    client = make_client(session, standin)
    stable = await client.search("Microsoft.Extensions.AI")
    pre = await client.search("Microsoft.Extensions.AI", prerelease=True)

    stable_ids = {p.id: p for p in stable.packages}
    assert "Microsoft.Extensions.AI.OpenAI" not in stable_ids  # has prerelease versions only
    assert stable_ids["Microsoft.Extensions.AI"].version == "9.8.0"
    assert all("-" not in v for v in stable_ids["Microsoft.Extensions.AI"].versions)
    pre_ids = {p.id: p for p in pre.packages}
    assert pre_ids["Microsoft.Extensions.AI.OpenAI"].version == "9.8.0-preview.1.25412.6"
    assert pre_ids["Microsoft.Extensions.AI"].version == "10.0.0-rc.1.25451.107"


async def test_search_maps_nuget_fields_and_tolerates_missing_ones(session, standin):
    result = await make_client(session, standin).search("openai", prerelease=True)
    by_id = {p.id: p for p in result.packages}

    openai = by_id["OpenAI"]
    assert openai.version == "2.3.0"
    assert openai.authors == ["OpenAI"] and openai.owners == ["OpenAI", "Microsoft"]
    assert openai.verified is True and openai.total_downloads == 16_400_000
    assert "chatgpt" in openai.tags
    assert openai.versions == ["2.0.0", "2.1.0", "2.2.0-beta.4", "2.2.0", "2.3.0"]
    assert openai.package_types == ["Dependency"]
    assert openai.project_url == "https://github.com/openai/openai-dotnet"
    assert openai.license_url and openai.icon_url
    assert openai.nuget_url == "https://www.nuget.org/packages/OpenAI/2.3.0"

    langchain = by_id["LangChain"]  # authors/owners/tags arrive as strings, project/icon URLs are absent
    assert langchain.authors == ["tryAGI", "LangChain .NET contributors"]
    assert langchain.owners == ["HavenDV"]
    assert "rag" in langchain.tags and langchain.verified is False
    assert langchain.project_url is None and langchain.icon_url is None
    assert result.total_hits == len(result.packages)


async def test_search_without_hits(session, standin):
    result = await make_client(session, standin).search("no-such-thing-xyz")
    assert result.total_hits == 0 and result.packages == []
    assert format_search_for_agent(result) == "No NuGet packages found."


# --- package details --------------------------------------------------------------------------


async def test_get_package_inlined_pages_picks_latest_stable(session, standin):
    details = await make_client(session, standin).get_package("microsoft.extensions.ai")  # case-insensitive

    assert details.id == "Microsoft.Extensions.AI"
    assert details.version == "9.8.0"  # not the newer 10.0.0-rc.1 prerelease
    assert details.versions[0] == "9.0.0-preview.9.24525.1" and details.versions[-1] == "10.0.0-rc.1.25451.107"
    assert details.license_expression == "MIT"
    assert details.license_url == "https://licenses.nuget.org/MIT"
    assert details.project_url == "https://dot.net/"
    assert details.authors == ["Microsoft"]
    assert details.listed is True
    assert details.published is not None and details.published.year == 2025 and details.published.month == 8
    assert details.nuget_url == "https://www.nuget.org/packages/Microsoft.Extensions.AI/9.8.0"
    groups = {g.target_framework: g for g in details.dependency_groups}
    assert set(groups) == {"net9.0", "net8.0", ".NETStandard2.0"}
    deps = {d.id: d.range for d in groups["net8.0"].dependencies}
    assert deps["Microsoft.Extensions.AI.Abstractions"] == "[9.8.0, )"
    assert not any("/page/" in r.path for r in standin.requests)


async def test_get_package_follows_non_inlined_pages(session, standin):
    details = await make_client(session, standin).get_package("Microsoft.SemanticKernel")

    page_requests = [r.path for r in standin.requests if "/page/" in r.path]
    assert len(page_requests) == 2
    # 1.61.1 is unlisted and 1.62.0-alpha is a prerelease: the latest listed stable is 1.61.0.
    assert details.version == "1.61.0"
    assert "1.61.1" not in details.versions
    assert details.versions[:2] == ["1.0.1", "1.10.0"] and details.versions[-1] == "1.62.0-alpha"
    assert details.project_url == "https://aka.ms/semantic-kernel"
    assert {d.id for g in details.dependency_groups for d in g.dependencies} == {
        "Microsoft.SemanticKernel.Core", "Microsoft.SemanticKernel.Connectors.AzureOpenAI"
    }


async def test_get_package_falls_back_to_latest_prerelease(session, standin):
    details = await make_client(session, standin).get_package("Microsoft.Extensions.AI.OpenAI")
    assert details.version == "9.8.0-preview.1.25412.6"
    assert "preview" in format_details_for_agent(details)


async def test_get_package_explicit_version(session, standin):
    client = make_client(session, standin)

    details = await client.get_package("Microsoft.Extensions.AI", "9.5.0")
    assert details.version == "9.5.0"
    assert details.nuget_url == "https://www.nuget.org/packages/Microsoft.Extensions.AI/9.5.0"
    assert {d.range for g in details.dependency_groups for d in g.dependencies} >= {"[9.5.0, )"}

    assert (await client.get_package("Microsoft.Extensions.AI", "9.5")).version == "9.5.0"  # NuGet normalization
    pre = await client.get_package("Microsoft.SemanticKernel.Agents.Core", "1.40.0-PREVIEW")
    assert pre.version == "1.40.0-preview"
    unlisted = await client.get_package("Microsoft.SemanticKernel", "1.61.1")  # still resolvable, flagged
    assert unlisted.listed is False
    assert "UNLISTED" in format_details_for_agent(unlisted)


async def test_get_package_unknown_package_or_version(session, standin):
    client = make_client(session, standin)
    with pytest.raises(NuGetNotFoundError, match="No.Such.Package"):
        await client.get_package("No.Such.Package")
    with pytest.raises(NuGetNotFoundError, match="no version '99.0.0'") as exc_info:
        await client.get_package("OpenAI", "99.0.0")
    assert "2.3.0" in str(exc_info.value)  # tells the caller which versions do exist

    requests_before = len(standin.requests)
    with pytest.raises(NuGetNotFoundError, match="not a valid NuGet package ID"):
        await client.get_package("../../etc/passwd")
    assert len(standin.requests) == requests_before  # rejected without any request


async def test_get_package_when_server_fails(session):
    async with nuget_standin("down500") as down:
        with pytest.raises(NuGetUnavailableError, match="HTTP 500"):
            await make_client(session, down).get_package("OpenAI")
    async with nuget_standin("malformed") as broken:
        with pytest.raises(NuGetError, match="invalid response") as exc_info:
            await make_client(session, broken).get_package("OpenAI")
        assert not isinstance(exc_info.value, NuGetNotFoundError)


# --- README and license -----------------------------------------------------------------------


async def test_get_readme_present_and_missing(session, standin):
    client = make_client(session, standin)
    readme = await client.get_readme("Microsoft.Extensions.AI", "9.8.0")
    assert readme is not None and readme.startswith("# Microsoft.Extensions.AI")
    assert "dotnet add package Microsoft.Extensions.AI" in readme
    assert standin.requests[-1].path == "/flat/microsoft.extensions.ai/9.8.0/readme"

    assert await client.get_readme("Microsoft.ML", "4.0.2") is None  # package without README
    assert await client.get_readme("Microsoft.Extensions.AI", "0.0.1") is None  # unknown version
    assert await client.get_readme("No.Such.Package", "1.0.0") is None


async def test_get_readme_lowercases_and_strips_build_metadata(session, standin):
    client = make_client(session, standin)
    readme = await client.get_readme("MICROSOFT.EXTENSIONS.AI", "10.0.0-RC.1.25451.107+sha.abc123")
    assert readme is not None
    assert standin.requests[-1].path == "/flat/microsoft.extensions.ai/10.0.0-rc.1.25451.107/readme"


async def test_get_license_present_and_missing(session, standin):
    client = make_client(session, standin)
    text = await client.get_license("LangChain", "0.17.0")
    assert text is not None and text.startswith("MIT License")
    assert standin.requests[-1].path == "/flat/langchain/0.17.0/license"
    # License expressions (MIT) have no embedded file: 404 -> None.
    assert await client.get_license("Microsoft.Extensions.AI", "9.8.0") is None


# --- fallback and failure handling ------------------------------------------------------------


async def test_primary_connection_refused_uses_secondary(session, secondary):
    primary = f"{closed_port_url()}/query"
    client = make_client(session, secondary, search_urls=[primary, secondary.search_url])
    result = await client.search("semantickernel")
    assert result.source_url == secondary.search_url
    assert [p.id for p in result.packages] == ["Microsoft.SemanticKernel", "Microsoft.SemanticKernel.Agents.Core"]


async def test_primary_500_uses_secondary(session, secondary):
    async with nuget_standin("down500") as primary:
        client = make_client(session, secondary, search_urls=[primary.search_url, secondary.search_url])
        result = await client.search("openai")
        assert result.source_url == secondary.search_url
        assert [r.path for r in primary.requests] == ["/query"]  # it was tried first
        assert result.packages


async def test_primary_malformed_json_uses_secondary(session, secondary):
    async with nuget_standin("malformed") as primary:
        client = make_client(session, secondary, search_urls=[primary.search_url, secondary.search_url])
        result = await client.search("openai")
        assert result.source_url == secondary.search_url


async def test_all_endpoints_down_raises_human_message(session):
    async with nuget_standin("down500") as down:
        refused = f"{closed_port_url()}/query"
        client = make_client(session, down, search_urls=[refused, down.search_url])
        with pytest.raises(NuGetUnavailableError) as exc_info:
            await client.search("openai")
    err = exc_info.value
    message = str(err)
    assert isinstance(err, NuGetError)
    assert message.startswith("NuGet search is unavailable right now")
    assert "connection failed" in message and "HTTP 500" in message and "try again later" in message
    assert "Traceback" not in message and "127.0.0.1" not in message and "\n" not in message
    assert [url for url, _ in err.attempts] == [refused, down.search_url]


async def test_slow_primary_times_out_and_falls_back_quickly(session, secondary):
    async with nuget_standin("slow", slow_seconds=5.0) as slow:
        client = make_client(session, secondary, search_urls=[slow.search_url, secondary.search_url],
                             timeout_seconds=0.3)
        started = time.monotonic()
        result = await client.search("openai")
        elapsed = time.monotonic() - started
    assert result.source_url == secondary.search_url
    assert elapsed < 2.0


async def test_only_slow_endpoint_raises_timeout_quickly(session):
    started = time.monotonic()
    async with nuget_standin("slow", slow_seconds=5.0) as slow:
        client = make_client(session, slow, timeout_seconds=0.3)
        with pytest.raises(NuGetUnavailableError, match=r"timed out after 0\.3s"):
            await client.search("openai")
        with pytest.raises(NuGetUnavailableError, match="timed out"):
            await client.get_readme("OpenAI", "2.3.0")
    assert time.monotonic() - started < 3.0  # includes server shutdown: slow handlers get cancelled


async def test_malformed_json_from_last_endpoint_is_a_clear_error(session):
    async with nuget_standin("malformed") as broken:
        with pytest.raises(NuGetError, match="invalid response") as exc_info:
            await make_client(session, broken).search("openai")
    assert "Traceback" not in str(exc_info.value) and "JSONDecodeError" not in str(exc_info.value)


async def test_standin_can_switch_mode_and_start_stop_helpers(session):
    base_url, runner = await start_nuget_standin()
    try:
        server = NuGetStandin(base_url, runner)
        client = make_client(session, server)
        assert (await client.search("onnx")).packages[0].id == "Microsoft.ML.OnnxRuntime"
        server.state.mode = "down500"
        with pytest.raises(NuGetUnavailableError):
            await client.search("onnx")
        async with session.get(f"{base_url}/registration/openai/index.json") as resp:
            assert resp.status == 500
        server.state.mode = "ok"
        async with session.get(f"{base_url}/registration/openai/index.json") as resp:
            assert resp.headers.get("Content-Encoding") == "gzip"  # like registration5-gz-semver2
            assert (await resp.json())["items"][0]["items"][0]["catalogEntry"]["id"] == "OpenAI"
    finally:
        await stop_nuget_standin(runner)
    assert not session.closed  # the client never owns or closes the shared session


# --- formatting and configuration -------------------------------------------------------------


async def test_format_search_for_agent(session, standin):
    result = await make_client(session, standin).search("openai", take=3, prerelease=True)
    text = format_search_for_agent(result)
    lines = text.splitlines()
    assert lines[0].startswith(f"{result.total_hits} package(s) matched; showing 3")
    first = result.packages[0]
    assert f"1. {first.id} {first.version}" in lines[1]
    for package in result.packages:
        assert f"| https://www.nuget.org/packages/{package.id}/{package.version}" in text
    assert "verified" in lines[1] and f"{first.total_downloads:,} downloads" in lines[1]
    assert all(len(line) < 250 for line in lines)


async def test_format_details_for_agent(session, standin):
    details = await make_client(session, standin).get_package("Microsoft.Extensions.AI")
    text = format_details_for_agent(details, max_versions=3)
    assert text.splitlines()[0].startswith("Microsoft.Extensions.AI 9.8.0 (listed, published 2025-08-12)")
    assert "URL: https://www.nuget.org/packages/Microsoft.Extensions.AI/9.8.0" in text
    assert "License: MIT" in text
    assert "Versions, newest first: 10.0.0-rc.1.25451.107, 9.8.0, 9.7.1 (+6 older)" in text
    assert "  net8.0: Microsoft.Extensions.AI.Abstractions [9.8.0, )" in text


async def test_client_defaults(session):
    assert DEFAULT_SEARCH_URLS == (
        "https://azuresearch-usnc.nuget.org/query", "https://azuresearch-ussc.nuget.org/query"
    )
    assert DEFAULT_REGISTRATION_BASE_URL == "https://api.nuget.org/v3/registration5-gz-semver2/"
    assert DEFAULT_FLAT_CONTAINER_URL == "https://api.nuget.org/v3-flatcontainer/"
    NuGetClient(session=session)  # constructing touches no network
    with pytest.raises(ValueError):
        NuGetClient(session=session, search_urls=[])
    with pytest.raises(TypeError):
        NuGetClient(session)  # keyword-only
