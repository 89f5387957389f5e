"""GET /health (readiness of each part) and GET /api (the endpoint map)."""

import datetime as dt

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from models import ComponentStatus, HealthResponse
from routers.deps import DatabaseDep, KnowledgeBaseDep, ModelProbeDep, SettingsDep
from services.core.settings import VERSION

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health(database: DatabaseDep, kb: KnowledgeBaseDep, settings: SettingsDep, probe: ModelProbeDep,
                 deep: bool = False) -> HealthResponse:
    """Report the service's version and whether store, index, embedder and model are ready (`deep`: ask the model)."""
    store_ok = await database.ping()
    model = await probe.check() if deep else probe.unchecked()
    components = {
        "store": ComponentStatus(ready=store_ok, detail="embedded" if database.embedded else "mongodb"),
        "index": ComponentStatus(ready=kb.ready, detail=f"{kb.index.kind}, {kb.size} chunks" if kb.local else "atlas vector search"),
        "embedder": ComponentStatus(ready=kb.embedder is not None, detail=kb.embedder.model_id),
        "model": ComponentStatus(ready=model.ready, detail=model.detail),
    }
    status = "healthy" if all(c.ready for c in components.values()) else "degraded"
    try:
        oldest = await kb.oldest_verified()
    except Exception:  # a probe must answer even when this extra read fails
        oldest = None
    return HealthResponse(status=status, version=VERSION, timestamp=dt.datetime.now(dt.timezone.utc),
                          environment="development" if settings.is_development else "production",
                          components=components, kb_oldest_verified=oldest)


STATIC_INDEX = Path(__file__).resolve().parent.parent / "static" / "index.html"


@router.get("/", summary="Endpoint map, or the chat page for browsers")
async def root(request: Request):
    """The endpoint map as JSON (like the original), or the chat page when a browser asks for HTML."""
    if "text/html" in request.headers.get("accept", "") and STATIC_INDEX.exists():
        return FileResponse(STATIC_INDEX, media_type="text/html")
    return await endpoint_map(request)


@router.get("/api", summary="Endpoint map")
async def endpoint_map(request: Request) -> dict:
    """The service's name, version and endpoints (the original API's `GET /`)."""
    # FastAPI groups included routers, so the OpenAPI paths are the reliable list of endpoints.
    endpoints = {path: ",".join(sorted(method.upper() for method in operations))
                 for path, operations in request.app.openapi().get("paths", {}).items()}
    return {"message": "C# AI Buddy API", "version": VERSION, "docs": "/docs", "endpoints": endpoints}
