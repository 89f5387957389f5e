"""The typed container one app instance holds; built in the lifespan, read by `routers/deps.py` only."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from nuget_search import NuGetClient
from services.agent.model_probe import ModelProbe
from services.agent.run import ChatRunner
from services.content.setup import ContentViews
from services.core.admission import Admission
from services.core.rate_limits import RateLimits
from services.core.settings import Settings
from services.feedback.delivery import FeedbackDelivery
from services.observability.metrics import Metrics
from services.observability.telemetry import TelemetryStore
from services.observability.tracing import Tracing
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import Database


@dataclass(frozen=True)
class AppServices:
    settings: Settings
    database: Database
    knowledge_base: KnowledgeBase
    chat: ChatRunner
    tracing: Tracing
    metrics: Metrics
    http: aiohttp.ClientSession
    nuget: NuGetClient
    feedback_delivery: FeedbackDelivery
    content: ContentViews
    limits: RateLimits
    telemetry: TelemetryStore
    model_probe: ModelProbe | None = None  # /health?deep=true
    admission: Admission | None = None  # MAX_CONCURRENT_CHATS (services.core.admission)
