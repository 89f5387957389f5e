"""Opens every client once per app (database, HTTP session, embedder, index, tracer, model) and closes them."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack, asynccontextmanager
from typing import AsyncIterator

from services.agent import build_agent, build_model
from services.app_services import AppServices
from services.content_seed import open_content_views, prepare_content
from services.database import ensure_indexes, open_database
from services.embeddings import create_embedder
from services.feedback_delivery import open_feedback_delivery
from services.knowledge_base import KnowledgeBase
from services.mcp_servers import mcp_instructions, open_mcp_servers
from services.metrics import Metrics
from services.settings import Settings
from services.tools import agent_tools, nuget_client
from services.tracing import setup_tracing

log = logging.getLogger(__name__)


def _openai_client(settings: Settings):
    if settings.model_mode == "offline" and not settings.openai_api_key:
        return None
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=settings.openai_api_key or "not-needed", base_url=settings.openai_base_url)


async def seed_knowledge_base(*, database, kb: KnowledgeBase) -> None:
    """Load the shipped articles (only changed ones are re-embedded)."""
    from services.corpus import load_articles
    from services.kb_ingest import sync_articles

    articles, problems = load_articles()
    for problem in problems:
        log.warning("skipped article: %s", problem)
    report = await sync_articles(database=database, kb=kb, articles=articles, origin="seed")
    log.info("knowledge base seed: %d added, %d updated, %d unchanged, %d removed (%d chunks written)",
             report.added, report.updated, report.unchanged, report.removed, report.chunks_written)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[AppServices]:
    async with AsyncExitStack() as stack:
        tracing = setup_tracing(settings)
        stack.callback(tracing.shutdown)
        database = await open_database(settings)
        stack.push_async_callback(database.close)
        await ensure_indexes(database)
        await prepare_content(database=database, settings=settings)  # news/samples indexes + seed

        openai_client = _openai_client(settings)
        if openai_client is not None:
            stack.push_async_callback(openai_client.close)
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
        model = build_model(settings, openai_client)
        agent = build_agent(model=model, tools=tools, mcp_servers=mcp_servers,
                            extra_instructions=tool_instructions + mcp_instructions(mcp_servers))
        services = AppServices(settings=settings, database=database, knowledge_base=kb, agent=agent,
                               tracing=tracing, http=http, nuget=nuget)
        services.extras["mcp_servers"] = mcp_servers
        services.metrics = Metrics()
        services.feedback_delivery = await open_feedback_delivery(
            database=database, settings=settings, http=http, phoenix_url=tracing.phoenix_url, metrics=services.metrics)
        stack.push_async_callback(services.feedback_delivery.stop)  # before the session and database close
        services.extras["content"] = open_content_views(settings=settings, database=database)
        stack.callback(services.extras["content"].close)
        log.info("ready: store=%s model=%s embedder=%s index=%s (%d chunks)",
                 "embedded" if database.embedded else "mongodb", settings.model_mode, embedder.model_id,
                 kb.index.kind, kb.size)
        yield services
