"""MCP servers (e.g. Microsoft Learn's docs server) connected once per process over streamable HTTP.

The MCP client keeps anyio cancel scopes open for the life of a connection, and those must be
exited by the task that entered them. The Agents SDK's `MCPServerManager` with
`connect_in_parallel=True` gives every server its own worker task for connect and cleanup, so
opening here in the lifespan and closing at shutdown stays correct whichever task runs them;
request tasks only send messages over the open sessions.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from agents.mcp import MCPServer, MCPServerManager, MCPServerStreamableHttp

from services.core.settings import MCPServerConfig

log = logging.getLogger(__name__)


def _describe(error: BaseException | None) -> str:
    # Only the exception type and its first line: connection errors can be long chained reprs.
    if error is None:
        return "unknown error"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _server(config: MCPServerConfig, *, timeout_seconds: float) -> MCPServerStreamableHttp:
    return MCPServerStreamableHttp(
        params={"url": config.url, "headers": dict(config.headers), "timeout": timeout_seconds,
                "sse_read_timeout": timeout_seconds * 3},
        name=config.name,
        cache_tools_list=True,  # tool lists are stable; without this every run lists them again
        client_session_timeout_seconds=timeout_seconds,
        max_retry_attempts=1,
    )


async def _usable(servers: list[MCPServer], reserved: set[str]) -> list[MCPServer]:
    """List each server's tools now (filling the cache) and keep servers whose tools are listable and unique.

    A failing listing or a duplicate tool name would otherwise break every chat run, not just one tool.
    """
    usable: list[MCPServer] = []
    seen = set(reserved)
    for server in servers:
        try:
            names = {tool.name for tool in await server.list_tools()}
        except Exception as exc:
            log.warning("MCP server %r connected but its tools could not be listed; skipping it (%s)",
                        server.name, _describe(exc))
            continue
        clash = names & seen
        if clash:
            log.warning("MCP server %r skipped: tool name(s) %s already provided by another tool",
                        server.name, ", ".join(sorted(clash)))
            continue
        seen |= names
        usable.append(server)
        log.info("MCP server %r connected with tools: %s", server.name, ", ".join(sorted(names)) or "none")
    return usable


@asynccontextmanager
async def open_mcp_servers(configs: list[MCPServerConfig], *, connect_timeout_seconds: float = 10.0,
                           timeout_seconds: float = 20.0,
                           reserved_tool_names: set[str] | frozenset[str] = frozenset()) -> AsyncIterator[list[MCPServer]]:
    """Connect the configured servers; yields the usable ones (down servers are skipped with a warning)."""
    if not configs:
        yield []
        return
    servers = [_server(c, timeout_seconds=timeout_seconds) for c in configs]
    manager = MCPServerManager(servers, connect_timeout_seconds=connect_timeout_seconds,
                               cleanup_timeout_seconds=5.0, drop_failed_servers=True, strict=False,
                               connect_in_parallel=True)
    async with manager:
        errors = manager.errors
        for server in manager.failed_servers:
            url = next((c.url for c in configs if c.name == server.name), "")
            log.warning("MCP server %r (%s) is unavailable and will be skipped: %s",
                        server.name, url, _describe(errors.get(server)))
        yield await _usable(manager.active_servers, set(reserved_tool_names))


def mcp_instructions(servers: list[MCPServer]) -> str:
    """Instruction lines for the connected servers only, so the agent never promises a missing tool."""
    if not servers:
        return ""
    names = ", ".join(server.name for server in servers)
    return (f"\n- Documentation tools from MCP servers ({names}) search official docs such as Microsoft Learn;"
            "\n  use them for API details the knowledge base lacks and cite the URLs they return.")
