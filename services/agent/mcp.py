"""MCP servers (e.g. Microsoft Learn's docs server) connected once per process over streamable HTTP.

The MCP client keeps anyio cancel scopes open for the life of a connection, and those must be
exited by the task that entered them. The Agents SDK's `MCPServerManager` with
`connect_in_parallel=True` gives every server its own worker task for connect and cleanup, so
opening here in the lifespan and closing at shutdown stays correct whichever task runs them;
request tasks only send messages over the open sessions.
"""

from __future__ import annotations

import asyncio
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


async def _admit(server: MCPServer, seen: set[str]) -> set[str] | bool | None:
    """List the server's tools now (filling the cache): its tool names when usable (they join `seen`), False
    when a tool name clashes (for good), None when the listing failed (worth another try).

    A failing listing or a duplicate tool name would otherwise break every chat run, not just one tool.
    """
    try:
        names = {tool.name for tool in await server.list_tools()}
    except Exception as exc:
        log.warning("MCP server %r connected but its tools could not be listed; skipping it (%s)",
                    server.name, _describe(exc))
        return None
    clash = names & seen
    if clash:
        log.warning("MCP server %r skipped: tool name(s) %s already provided by another tool",
                    server.name, ", ".join(sorted(clash)))
        return False
    seen |= names
    log.info("MCP server %r connected with tools: %s", server.name, ", ".join(sorted(names)) or "none")
    return names


async def _answers(server: MCPServer, timeout_seconds: float) -> bool:
    """Whether the server answers an MCP ping over its open session within `timeout_seconds`."""
    session = getattr(server, "session", None)
    if session is None:
        return False
    try:
        await asyncio.wait_for(session.send_ping(), timeout_seconds)
        return True
    except Exception:  # a dead process, a closed connection, a stall: all the same here
        return False


class _Retrier:
    """Keeps the agent's MCP servers usable, in a background task, over the process's life.

    Servers down (or unlistable) at start are retried with backoff; each one that comes up is appended to
    `active`, the very list the agent holds, so the next chat run uses its tools. Every `health_seconds`
    the servers in use are pinged; one that stops answering (its process died or restarted, which ends its
    session for good) leaves `active` at once, so chats stop waiting on its tools, and is reconnected
    with the same backoff until it answers again. Connects go through the manager, whose per-server
    worker tasks keep cleanup correct."""

    def __init__(self, manager: MCPServerManager, active: list[MCPServer], seen: set[str], *,
                 first_seconds: float, max_seconds: float, stop_timeout: float, health_seconds: float = 0.0,
                 ping_timeout: float = 10.0) -> None:
        self._manager, self._active, self._seen = manager, active, seen
        self._first, self._max, self._stop_timeout = first_seconds, max(first_seconds, max_seconds), stop_timeout
        self._health, self._ping_timeout = health_seconds, ping_timeout
        self._rejected: set[MCPServer] = set()
        self._names: dict[MCPServer, set[str]] = {}  # each admitted server's tool names
        self._dead: set[MCPServer] = set()  # stopped answering after it was admitted; needs a new session
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def pending(self) -> list[MCPServer]:
        return [s for s in self._manager.all_servers if s not in self._active and s not in self._rejected]

    @property
    def needed(self) -> bool:
        """Whether the background task has work: servers to retry, or servers to watch."""
        return (self._first > 0 and bool(self.pending())) or (self._health > 0 and bool(self._manager.all_servers))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mcp-retry")

    async def stop(self) -> None:
        """Stop before the manager closes: the task ends after its current connect attempt (bounded by its timeout)."""
        self._stop.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=self._stop_timeout)
        if not done:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)

    async def attempt(self, *, reconnect: bool = True) -> None:
        """One round: reconnect the failed (or dead) servers, then admit every connected server not yet in use."""
        if reconnect and self._dead:
            # The SDK's manager reconnects either its failed servers or all of them; a server that died
            # after connecting is not "failed" to it, so all are renewed (healthy ones get a fresh session).
            await self._manager.reconnect(failed_only=False)
            for server in self._dead:
                server.invalidate_tools_cache()
            self._dead.clear()
        elif reconnect and self._manager.failed_servers:
            await self._manager.reconnect(failed_only=True)
        for server in self._manager.active_servers:
            if server in self._active or server in self._rejected:
                continue
            verdict = await _admit(server, self._seen)
            if verdict is False:
                self._rejected.add(server)
            elif verdict is not None:
                self._names[server] = verdict
                self._active.append(server)
                log.info("MCP server %r is up now; its tools join the agent from the next chat", server.name)

    async def check_health(self) -> list[MCPServer]:
        """Ping the servers in use; those that do not answer leave the agent (returned) and wait for a reconnect."""
        lost = [server for server in list(self._active) if not await _answers(server, self._ping_timeout)]
        for server in lost:
            self._active.remove(server)
            self._seen -= self._names.pop(server, set())
            self._dead.add(server)
            log.warning("MCP server %r stopped answering; its tools leave the agent until it is reconnected",
                        server.name)
        return lost

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds`; True when asked to stop meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _run(self) -> None:
        delay = self._first or self._max
        while True:
            if not self._dead and not (self._first > 0 and self.pending()):  # nothing to reconnect: watch
                delay = self._first or self._max
                if self._health <= 0 or await self._sleep(self._health):
                    return
                try:
                    await self.check_health()  # a server that stopped answering is reconnected next round
                except Exception:  # never let the watch task die with an unretrieved error
                    log.warning("MCP health check failed", exc_info=True)
                continue
            if await self._sleep(0 if self._dead else delay):  # a server that just died: at once
                return
            try:
                await self.attempt()
            except Exception:  # never let the retry task die with an unretrieved error
                log.warning("MCP reconnect attempt failed", exc_info=True)
            if self._stop.is_set():
                return
            delay = min(delay * 2, self._max)
            left = self.pending()
            if left:
                log.info("MCP server(s) %s still unavailable; next try in %.0f s",
                         ", ".join(repr(s.name) for s in left), delay)


@asynccontextmanager
async def open_mcp_servers(configs: list[MCPServerConfig], *, connect_timeout_seconds: float = 10.0,
                           timeout_seconds: float = 20.0,
                           reserved_tool_names: set[str] | frozenset[str] = frozenset(),
                           retry_seconds: float = 0.0, retry_max_seconds: float = 600.0,
                           health_seconds: float = 0.0) -> AsyncIterator[list[MCPServer]]:
    """Connect the configured servers; yields the usable ones (down servers are skipped with a warning).

    With `retry_seconds` > 0 the skipped ones are retried in the background (first after `retry_seconds`,
    doubling up to `retry_max_seconds`) and appended to the yielded list when they come up. With
    `health_seconds` > 0 the servers in use are pinged that often; one that stopped answering leaves the
    list and is reconnected (at once, then with the same backoff) and rejoins it when it answers again.
    """
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
            log.warning("MCP server %r (%s) is unavailable and will be skipped%s: %s", server.name, url,
                        f" (retrying in the background every {retry_seconds:g} s or more)" if retry_seconds > 0 else "",
                        _describe(errors.get(server)))
        active: list[MCPServer] = []
        retrier = _Retrier(manager, active, set(reserved_tool_names), first_seconds=retry_seconds,
                           max_seconds=retry_max_seconds, stop_timeout=connect_timeout_seconds + 10,
                           health_seconds=health_seconds, ping_timeout=timeout_seconds)
        await retrier.attempt(reconnect=False)  # admits the servers that just connected
        if retrier.needed:
            retrier.start()
        try:
            yield active
        finally:
            await retrier.stop()


def mcp_instructions(servers: list[MCPServer]) -> str:
    """Instruction lines for the connected servers only, so the agent never promises a missing tool."""
    if not servers:
        return ""
    names = ", ".join(server.name for server in servers)
    return (f"\n- Documentation tools from MCP servers ({names}) search official docs such as Microsoft Learn;"
            "\n  use them for API details the knowledge base lacks and cite the URLs they return.")
