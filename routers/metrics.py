"""GET /metrics: the app's Prometheus metrics in the text exposition format."""

from fastapi import APIRouter
from fastapi.responses import Response

from routers.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep) -> Response:
    """Request, chat, tool, feedback and rate-limit counters for Prometheus to scrape."""
    return Response(content=metrics.render(), media_type=metrics.content_type)
