"""The routers' dependencies, declared once: each names the one service a handler uses."""

from typing import Annotated

from fastapi import Depends, Header, Request

from nuget_search import NuGetClient
from services.agent.model_probe import ModelProbe
from services.agent.run import ChatRunner
from services.container import AppServices
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
from services.storage.keys import KeyGate
from web.client_ip import client_ip


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


async def get_telemetry_store(request: Request) -> TelemetryStore:
    return _services(request).telemetry


async def get_nuget(request: Request) -> NuGetClient:
    return _services(request).nuget


async def get_model_probe(request: Request) -> ModelProbe:
    return _services(request).model_probe


async def get_admission(request: Request) -> Admission:
    return _services(request).admission or Admission(limit=0)  # a container built without one admits everything


async def get_client_ip(request: Request) -> str | None:
    """The one place that says who the client is (TRUSTED_PROXIES decides whether X-Forwarded-For counts)."""
    settings = _services(request).settings
    peer = request.client.host if request.client else None
    if not settings.trusted_proxies:
        return peer
    return client_ip(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxy_networks)


async def get_key_gate(request: Request) -> KeyGate:
    services = _services(request)
    return KeyGate(database=services.database, settings=services.settings, limits=services.limits,
                   client_ip=await get_client_ip(request))


async def get_header_key(
    x_magic_key: Annotated[str | None, Header(alias="X-Magic-Key", description="The magic key (production).")] = None,
    authorization: Annotated[str | None, Header(alias="Authorization", include_in_schema=False)] = None,
) -> str | None:
    """The magic key sent in a header: `X-Magic-Key`, else `Authorization: Bearer <key>`."""
    if x_magic_key and x_magic_key.strip():
        return x_magic_key.strip()
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
ChatRunnerDep = Annotated[ChatRunner, Depends(get_chat_runner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TracingDep = Annotated[Tracing, Depends(get_tracing)]
ContentDep = Annotated[ContentViews, Depends(get_content)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
FeedbackDeliveryDep = Annotated[FeedbackDelivery, Depends(get_feedback_delivery)]
ModelProbeDep = Annotated[ModelProbe, Depends(get_model_probe)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
TelemetryStoreDep = Annotated[TelemetryStore, Depends(get_telemetry_store)]
ClientIpDep = Annotated[str | None, Depends(get_client_ip)]
KeyGateDep = Annotated[KeyGate, Depends(get_key_gate)]
HeaderKeyDep = Annotated[str | None, Depends(get_header_key)]
