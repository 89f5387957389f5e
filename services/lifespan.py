"""Opens every client once per app (database, HTTP session, embedder, index, tracer, model) and closes them."""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack, asynccontextmanager
from typing import AsyncIterator, Callable

from agents.models.interface import Model

from services.agent.builder import build_agent, build_model
from services.agent.mcp import open_mcp_servers
from services.agent.model_probe import ModelProbe
from services.agent.nuget_tools import agent_tools, nuget_client
from services.agent.run import ChatRunner, RunLimits
from services.container import AppServices
from services.content.setup import open_content_views, prepare_content
from services.core.admission import Admission
from services.core.openai_client import open_embedding_client, open_openai_client
from services.core.rate_limits import RateLimits
from services.core.settings import Settings
from services.core.shared_limits import SharedCounters
from services.core.token_budget import TokenBudget
from services.feedback.delivery import open_feedback_delivery
from services.ingest.kb_sync import seed_knowledge_base
from services.observability.metrics import Metrics
from services.observability.telemetry import TelemetryStore
from services.observability.tracing import setup_tracing
from services.retrieval.embeddings import Embedder, create_embedder
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import Database, ensure_indexes, open_database, require_reachable
from services.storage.retention import RetentionSweeper

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_services(settings: Settings, *, model: Model | None = None, embedder: Embedder | None = None,
                        clock: Callable[[], float] = time.monotonic,
                        database: Database | None = None) -> AsyncIterator[AppServices]:
    """Everything the app uses; `model`/`embedder` replace the configured ones (tests, benchmarks);
    `clock` drives the rate-limit windows.

    A given embedder or `database` belongs to the caller and is not closed here (tests run two apps,
    as two workers, on one database).
    """
    async with AsyncExitStack() as stack:
        tracing = setup_tracing(settings)
        stack.callback(tracing.shutdown)
        if database is None:
            database = await open_database(settings)
            stack.push_async_callback(database.close)
            if not database.embedded:
                await require_reachable(database, settings)
        await ensure_indexes(database, conversation_retention_days=settings.conversation_retention_days)
        await prepare_content(database=database, settings=settings)  # news/samples indexes + seed
        telemetry = TelemetryStore(database=database, max_rows=settings.telemetry_max_rows,
                                   retention_days=settings.telemetry_retention_days)
        await telemetry.prepare()  # retention index, expired rows, row count

        openai_client = open_openai_client(settings)
        if openai_client is not None:
            stack.push_async_callback(openai_client.close)
        if embedder is None:
            embedding_client = open_embedding_client(settings)
            if embedding_client is not None:
                stack.push_async_callback(embedding_client.close)
            embedder = create_embedder(settings, embedding_client)
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
            timeout_seconds=settings.mcp_timeout_seconds, retry_seconds=settings.mcp_retry_seconds,
            retry_max_seconds=settings.mcp_retry_max_seconds, health_seconds=settings.mcp_health_seconds,
            reserved_tool_names={"search_knowledge_base", "read_kb_article", *(getattr(t, "name", "") for t in tools)}))
        # `mcp_servers` is live: servers down at start are appended when they come up (instructions follow it)
        model = model or build_model(settings, openai_client)
        agent = build_agent(model=model, tools=tools, mcp_servers=mcp_servers,
                            extra_instructions=tool_instructions)
        model_probe = ModelProbe(mode=settings.model_mode, model=settings.openai_model, openai_client=openai_client,
                                 cache_seconds=settings.health_deep_cache_seconds)
        metrics = Metrics()
        chat = ChatRunner(agent=agent, database=database, knowledge_base=kb, tracer=tracing.tracer, metrics=metrics,
                          nuget=nuget, top_k=settings.retrieval_top_k, min_relevance=settings.min_relevance,
                          record_content=settings.trace_include_content,
                          limits=RunLimits.from_settings(settings, model_label=str(getattr(model, "model", None)
                                                             or type(model).__name__)),
                          budget=TokenBudget(limit=settings.token_budget_per_key_daily),
                          sdk_spans=tracing.receives_spans)
        delivery = await open_feedback_delivery(database=database, settings=settings, http=http,
                                                phoenix_url=tracing.phoenix_url, metrics=metrics)
        stack.push_async_callback(delivery.stop)  # before the session and database close
        retention = RetentionSweeper(database=database, retention_days=settings.conversation_retention_days)
        retention.start()
        stack.push_async_callback(retention.stop)
        content = open_content_views(settings=settings, database=database)
        stack.callback(content.close)
        log.info("ready: store=%s model=%s embedder=%s index=%s (%d chunks)",
                 "embedded" if database.embedded else "mongodb", settings.model_mode, embedder.model_id,
                 kb.index.kind, kb.size)
        shared = SharedCounters(database=database) if settings.uses_shared_state else None
        if shared is not None:
            await shared.prepare()
        limits = RateLimits(chat=settings.rate_limit_chat, feedback=settings.rate_limit_feedback,
                            telemetry=settings.rate_limit_telemetry, key_failures=settings.rate_limit_key_failures,
                            window_seconds=settings.rate_limit_window_seconds, clock=clock,
                            on_refusal=lambda name: metrics.rate_limited.labels(limit=name).inc(), shared=shared)
        admission = Admission(limit=settings.max_concurrent_chats, on_refusal=metrics.chat_admission_refused.inc)
        metrics.chat_streams_active.set_function(lambda: admission.active)
        yield AppServices(settings=settings, database=database, knowledge_base=kb, chat=chat, tracing=tracing,
                          metrics=metrics, http=http, nuget=nuget, feedback_delivery=delivery, content=content,
                          limits=limits, telemetry=telemetry, model_probe=model_probe, admission=admission)
