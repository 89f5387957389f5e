"""Opens every client once per app (database, HTTP session, embedder, index, tracer, model) and closes them."""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack, asynccontextmanager
from typing import AsyncIterator, Callable

from agents.models.interface import Model

from services.agent.builder import build_agent, build_model
from services.agent.mcp import mcp_instructions, open_mcp_servers
from services.agent.nuget_tools import agent_tools, nuget_client
from services.agent.run import ChatRunner
from services.container import AppServices
from services.content.setup import open_content_views, prepare_content
from services.core.openai_client import open_openai_client
from services.core.rate_limits import RateLimits
from services.core.settings import Settings
from services.feedback.delivery import open_feedback_delivery
from services.ingest.kb_sync import seed_knowledge_base
from services.observability.metrics import Metrics
from services.observability.tracing import setup_tracing
from services.retrieval.embeddings import Embedder, create_embedder
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import ensure_indexes, open_database

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_services(settings: Settings, *, model: Model | None = None, embedder: Embedder | None = None,
                        clock: Callable[[], float] = time.monotonic) -> AsyncIterator[AppServices]:
    """Everything the app uses; `model`/`embedder` replace the configured ones (tests, benchmarks);
    `clock` drives the rate-limit windows.

    A given embedder belongs to the caller and is not closed here.
    """
    async with AsyncExitStack() as stack:
        tracing = setup_tracing(settings)
        stack.callback(tracing.shutdown)
        database = await open_database(settings)
        stack.push_async_callback(database.close)
        await ensure_indexes(database)
        await prepare_content(database=database, settings=settings)  # news/samples indexes + seed

        openai_client = open_openai_client(settings)
        if openai_client is not None:
            stack.push_async_callback(openai_client.close)
        if embedder is None:
            embedder = create_embedder(settings, openai_client)
            stack.callback(embedder.close)
        kb = KnowledgeBase(database=database, embedder=embedder, settings=settings)
        await kb.check_model()
        await kb.load()
        if settings.seed_on_startup:
            await seed_knowledge_base(database=database, kb=kb)

        import aiohttp

        http = aiohttp.ClientSession(raise_for_status=False)
        stack.push_async_callback(http.close)

        nuget = nuget_client(settings=settings, session=http)
        tools, tool_instructions = agent_tools(settings)
        mcp_servers = await stack.enter_async_context(open_mcp_servers(
            settings.effective_mcp_servers, connect_timeout_seconds=settings.mcp_connect_timeout_seconds,
            timeout_seconds=settings.mcp_timeout_seconds,
            reserved_tool_names={"search_knowledge_base", *(getattr(t, "name", "") for t in tools)}))
        agent = build_agent(model=model or build_model(settings, openai_client), tools=tools, mcp_servers=mcp_servers,
                            extra_instructions=tool_instructions + mcp_instructions(mcp_servers))
        metrics = Metrics()
        chat = ChatRunner(agent=agent, database=database, knowledge_base=kb, tracer=tracing.tracer, metrics=metrics,
                          nuget=nuget, top_k=settings.retrieval_top_k, min_relevance=settings.min_relevance,
                          record_content=settings.trace_include_content)
        delivery = await open_feedback_delivery(database=database, settings=settings, http=http,
                                                phoenix_url=tracing.phoenix_url, metrics=metrics)
        stack.push_async_callback(delivery.stop)  # before the session and database close
        content = open_content_views(settings=settings, database=database)
        stack.callback(content.close)
        log.info("ready: store=%s model=%s embedder=%s index=%s (%d chunks)",
                 "embedded" if database.embedded else "mongodb", settings.model_mode, embedder.model_id,
                 kb.index.kind, kb.size)
        limits = RateLimits(chat=settings.rate_limit_chat, feedback=settings.rate_limit_feedback,
                            window_seconds=settings.rate_limit_window_seconds, clock=clock,
                            on_refusal=lambda name: metrics.rate_limited.labels(limit=name).inc())
        yield AppServices(settings=settings, database=database, knowledge_base=kb, chat=chat, tracing=tracing,
                          metrics=metrics, http=http, nuget=nuget, feedback_delivery=delivery, content=content,
                          limits=limits)
