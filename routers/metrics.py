"""GET /metrics: the app's Prometheus metrics in the text exposition format.

With METRICS_TOKEN set, only `Authorization: Bearer <token>` may read them (401 otherwise). Without
it they are public in development and hidden (404) in production unless METRICS_PUBLIC is true:
route names, error counts and traffic shape are for operators, not for visitors.
"""

import hmac

from fastapi import APIRouter, Header
from fastapi.responses import Response

from models import ErrorResponse
from routers.deps import MetricsDep, SettingsDep
from services.core.errors import KeyRequired, NotFound

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}, 401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
async def metrics(metrics: MetricsDep, settings: SettingsDep,
                  authorization: str | None = Header(default=None, include_in_schema=False)) -> Response:
    """Request, chat, tool, feedback and rate-limit counters for Prometheus to scrape."""
    if settings.metrics_token:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode()):
            raise KeyRequired("The metrics need `Authorization: Bearer <METRICS_TOKEN>`.",
                              headers={"WWW-Authenticate": "Bearer"})
    elif not settings.is_development and not settings.metrics_public:
        raise NotFound("Not Found")
    return Response(content=metrics.render(), media_type=metrics.content_type)
