"""POST /api/telemetry: website usage events, recorded only with the user's consent."""

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from models import ErrorResponse
from routers.deps import DatabaseDep, MetricsDep, TracingDep
from services.observability.telemetry import EVENT_TYPE_PATTERN, record_telemetry

router = APIRouter(prefix="/api", tags=["telemetry"])


class TelemetryRequest(BaseModel):
    event_type: str = Field(pattern=EVENT_TYPE_PATTERN, examples=["page_view"])
    data: dict[str, Any] = Field(default_factory=dict, description="Event details (at most 8 KB of JSON).")
    timestamp: dt.datetime | None = None
    user_consent: bool = Field(default=False, description="Nothing is recorded unless this is true.")


class TelemetryResponse(BaseModel):
    success: bool
    recorded: bool
    message: str


@router.post("/telemetry", response_model=TelemetryResponse, responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}})
async def submit_telemetry(body: TelemetryRequest, database: DatabaseDep, tracing: TracingDep, metrics: MetricsDep) -> TelemetryResponse:
    """Record one website event if the user consented; never fails because recording failed."""
    result = await record_telemetry(database=database, tracer=tracing.tracer,
                                    event_type=body.event_type, data=body.data, timestamp=body.timestamp,
                                    user_consent=body.user_consent, metrics=metrics)
    return TelemetryResponse(success=True, recorded=result.recorded, message=result.message)
