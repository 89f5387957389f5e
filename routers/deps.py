"""The routers' dependencies, declared once: each names the one service a handler uses."""

from typing import Annotated

from fastapi import Depends, Request

from nuget_search import NuGetClient
from services.agent.run import ChatRunner
from services.container import AppServices
from services.content.setup import ContentViews
from services.core.rate_limits import RateLimits
from services.core.settings import Settings
from services.feedback.delivery import FeedbackDelivery
from services.observability.metrics import Metrics
from services.observability.tracing import Tracing
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import Database


# Every getter is async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
# hop that cost ~0.3 ms on every request here (benchmarks/bench_read_endpoints.py).
def _services(request: Request) -> AppServices:
    return request.app.state.services


async def get_settings(request: Request) -> Settings:
    return _services(request).settings


async def get_database(request: Request) -> Database:
    return _services(request).database


async def get_knowledge_base(request: Request) -> KnowledgeBase:
    return _services(request).knowledge_base


async def get_chat_runner(request: Request) -> ChatRunner:
    return _services(request).chat


async def get_metrics(request: Request) -> Metrics:
    return _services(request).metrics


async def get_tracing(request: Request) -> Tracing:
    return _services(request).tracing


async def get_content(request: Request) -> ContentViews:
    return _services(request).content


async def get_feedback_delivery(request: Request) -> FeedbackDelivery:
    return _services(request).feedback_delivery


async def get_rate_limits(request: Request) -> RateLimits:
    return _services(request).limits


async def get_nuget(request: Request) -> NuGetClient:
    return _services(request).nuget


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
ChatRunnerDep = Annotated[ChatRunner, Depends(get_chat_runner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TracingDep = Annotated[Tracing, Depends(get_tracing)]
ContentDep = Annotated[ContentViews, Depends(get_content)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
FeedbackDeliveryDep = Annotated[FeedbackDelivery, Depends(get_feedback_delivery)]
