"""The services one app instance holds; built in the lifespan, reached through `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents import Agent

from services.database import Database
from services.knowledge_base import KnowledgeBase
from services.settings import Settings
from services.tracing import Tracing


@dataclass
class AppServices:
    settings: Settings
    database: Database
    knowledge_base: KnowledgeBase
    agent: Agent
    tracing: Tracing
    http: Any = None  # the one aiohttp.ClientSession
    nuget: Any = None
    metrics: Any = None
    feedback_delivery: Any = None  # services.feedback_delivery.FeedbackDelivery
    extras: dict[str, Any] = field(default_factory=dict)
