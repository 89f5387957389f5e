"""GET /metrics: the app's Prometheus metrics in the text exposition format."""

from fastapi import APIRouter
from fastapi.responses import Response

from routers.deps import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Request, chat, tool, feedback and rate-limit counters for Prometheus to scrape."""
    return Response(content=services.metrics.render(), media_type=services.metrics.content_type)
