"""Agent tools beyond the knowledge base: NuGet lookups and, on OpenAI's Responses model, web search.

Tools never raise: a failed lookup returns `{"error": "<sentence for a person>"}` so the model
(offline or hosted) can say what went wrong and still answer from the other tools.
"""

from __future__ import annotations

import asyncio
import json
import logging

from agents import RunContextWrapper, function_tool

from nuget_search import NuGetError
from services.agent.nuget_format import format_details_for_agent, format_search_for_agent
from services.agent.context import ChatContext
from services.agent.tool_results import ToolResult
from services.core.settings import Settings

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 200
README_CHARS = 2000
LICENSE_CHARS = 400
NUGET_OFF = "NuGet lookups are not available on this server right now."

NUGET_INSTRUCTIONS = """
- For package questions (which package, latest version, how to install), call `search_nuget_packages`
  and cite the nuget.org URLs it returns; use `get_nuget_package_details` for one package's versions,
  dependencies, license and README. If a NuGet tool returns an error, say so in one sentence."""
WEB_SEARCH_INSTRUCTIONS = """
- Use web search for recent releases, announcements or topics the other tools do not cover; cite the
  pages it returns."""


def _error(ctx: RunContextWrapper[ChatContext], tool: str, message: str) -> str:
    ctx.context.record(ctx, ToolResult(tool=tool, error=message))
    return json.dumps({"error": message}, ensure_ascii=False)


@function_tool(failure_error_function=None)  # expected failures return {"error"}; bugs end the turn
async def search_nuget_packages(ctx: RunContextWrapper[ChatContext], query: str, take: int = 5,
                                prerelease: bool = False) -> str:
    """Search nuget.org for .NET packages: ids, latest versions, downloads and verified owners.

    Args:
        query: Package id or keywords, e.g. "Microsoft.Extensions.AI" or "semantic kernel agents".
        take: How many packages to return (1-20).
        prerelease: True to include prerelease versions.
    """
    client = ctx.context.nuget
    query = (query or "").strip()[:MAX_QUERY_CHARS]
    if client is None:
        return _error(ctx, "search_nuget_packages", NUGET_OFF)
    if not query:
        return _error(ctx, "search_nuget_packages", "The NuGet search needs a package id or keywords.")
    try:
        found = await client.search(query, take=max(1, min(int(take or 5), 20)), prerelease=bool(prerelease))
    except NuGetError as exc:  # the client's messages are written for people and carry no URLs
        log.warning("NuGet search for %r failed: %s", query, exc)
        return _error(ctx, "search_nuget_packages", str(exc))
    results = [
        {"id": p.id, "title": p.id, "version": p.version, "downloads": p.total_downloads, "verified": p.verified,
         "description": p.description or p.summary, "url": p.nuget_url}
        for p in found.packages
    ]
    ctx.context.record(ctx, ToolResult(tool="search_nuget_packages", results=results))
    return json.dumps({"query": query, "total_hits": found.total_hits, "results": results,
                       "text": format_search_for_agent(found)}, ensure_ascii=False)


async def _optional_text(coro) -> str | None:
    """README/license are extras: their failure must not lose the package details."""
    try:
        return await coro
    except NuGetError as exc:
        log.info("optional NuGet file unavailable: %s", exc)
        return None


def _excerpt(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "\n…"


@function_tool(failure_error_function=None)  # expected failures return {"error"}; bugs end the turn
async def get_nuget_package_details(ctx: RunContextWrapper[ChatContext], package_id: str,
                                    version: str | None = None) -> str:
    """Details of one NuGet package version: versions, dependencies, license and the start of its README.

    Args:
        package_id: The exact package id, e.g. "Microsoft.SemanticKernel".
        version: A specific version; omit for the latest stable one.
    """
    client = ctx.context.nuget
    if client is None:
        return _error(ctx, "get_nuget_package_details", NUGET_OFF)
    package_id = (package_id or "").strip()[:MAX_QUERY_CHARS]
    try:
        details = await client.get_package(package_id, (version or "").strip() or None)
    except NuGetError as exc:
        log.warning("NuGet details for %r failed: %s", package_id, exc)
        return _error(ctx, "get_nuget_package_details", str(exc))
    need_license = not details.license_expression
    readme, license_text = await asyncio.gather(
        _optional_text(client.get_readme(details.id, details.version)),
        _optional_text(client.get_license(details.id, details.version)) if need_license else asyncio.sleep(0),
    )
    readme = _excerpt(readme, README_CHARS)
    license_text = _excerpt(license_text, LICENSE_CHARS)
    result = {
        "id": details.id, "title": f"{details.id} {details.version}", "version": details.version,
        "description": details.description, "url": details.nuget_url, "listed": details.listed,
        "published": details.published.isoformat() if details.published else None,
        "license": details.license_expression or license_text or details.license_url,
        "recent_versions": details.versions[::-1][:10],
        "dependencies": {g.target_framework or "any": [f"{d.id} {d.range or ''}".strip() for d in g.dependencies]
                         for g in details.dependency_groups},
    }
    text = format_details_for_agent(details)
    if readme:
        text += f"\nREADME (start):\n{readme}"
    ctx.context.record(ctx, ToolResult(tool="get_nuget_package_details", results=[result]))
    return json.dumps({"results": [result], "readme": readme, "text": text}, ensure_ascii=False)


NUGET_TOOLS = [search_nuget_packages, get_nuget_package_details]


def agent_tools(settings: Settings) -> tuple[list, str]:
    """The extra tools for this configuration and the instruction lines that describe them.

    The hosted web search exists only on OpenAI's Responses API, so it (and any promise of it in the
    instructions) is left out for compatible endpoints and the offline model.
    """
    tools: list = list(NUGET_TOOLS) if settings.nuget_enabled else []
    instructions = NUGET_INSTRUCTIONS if settings.nuget_enabled else ""
    if settings.model_mode == "openai" and settings.enable_web_search:
        from agents import WebSearchTool

        tools.append(WebSearchTool())
        instructions += WEB_SEARCH_INSTRUCTIONS
    return tools, instructions


def nuget_client(*, settings: Settings, session):
    """The NuGet client on the app's one aiohttp session, pointed at the configured endpoints."""
    from nuget_search import NuGetClient

    return NuGetClient(session=session, search_urls=settings.nuget_search_urls,
                       registration_base_url=settings.nuget_registration_url,
                       flat_container_url=settings.nuget_flat_container_url,
                       timeout_seconds=settings.nuget_timeout_seconds)
