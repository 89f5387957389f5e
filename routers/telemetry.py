"""POST /api/telemetry: website usage events, recorded only with the user's consent."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from models import ErrorResponse
from routers.deps import ClientIpDep, DatabaseDep, MetricsDep, RateLimitsDep, TelemetryStoreDep, TracingDep
from services.observability.telemetry import EVENT_TYPE_PATTERN, client_timestamp, record_telemetry

router = APIRouter(prefix="/api", tags=["telemetry"])


class TelemetryRequest(BaseModel):
    event_type: str = Field(pattern=EVENT_TYPE_PATTERN, examples=["page_view"])
    data: dict[str, Any] = Field(default_factory=dict, description="Event details (at most 8 KB of JSON).")
    timestamp: dt.datetime | None = Field(default=None, description="When it happened (years 2000-2099; naive means UTC).")
    user_consent: bool = Field(default=False, description="Nothing is recorded unless this is true.")

    @field_validator("timestamp", mode="after")
    @classmethod
    def _sane_timestamp(cls, value: dt.datetime | None) -> dt.datetime | None:
        return client_timestamp(value)


class TelemetryResponse(BaseModel):
    success: bool
    recorded: bool
    message: str


@router.post("/telemetry", response_model=TelemetryResponse,
             responses={code: {"model": ErrorResponse} for code in (400, 413, 429)})
async def submit_telemetry(body: TelemetryRequest, response: Response, database: DatabaseDep, tracing: TracingDep,
                           metrics: MetricsDep, limits: RateLimitsDep, client_ip: ClientIpDep,
                           store: TelemetryStoreDep) -> TelemetryResponse:
    """Record one website event if the user consented; never fails because recording failed."""
    response.headers.update(await limits.hit("telemetry", magic_key=None, client_ip=client_ip))
    result = await record_telemetry(database=database, tracer=tracing.tracer, store=store,
                                    event_type=body.event_type, data=body.data, timestamp=body.timestamp,
                                    user_consent=body.user_consent, metrics=metrics)
    return TelemetryResponse(success=True, recorded=result.recorded, message=result.message)
