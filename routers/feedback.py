"""POST /api/feedback: a thumbs up/down (and optional comment) on one answer, stored then forwarded."""

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from models import ErrorResponse
from routers.deps import (ClientIpDep, DatabaseDep, FeedbackDeliveryDep, HeaderKeyDep, KeyGateDep, MetricsDep,
                          RateLimitsDep, SettingsDep)
from services.feedback.records import MAX_COMMENT_CHARS, SPAN_ID_PATTERN, record_feedback
from services.storage.keys import key_owner

router = APIRouter(prefix="/api", tags=["feedback"])


class FeedbackRequest(BaseModel):
    span_id: str = Field(pattern=SPAN_ID_PATTERN, description="The 16-hex span id from the chat stream's metadata/complete line.",
                         examples=["9f2c4e1a7b3d5f60"])
    feedback_type: Literal["thumbs_up", "thumbs_down"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    magic_key: str | None = Field(default=None, max_length=200,
                                  description="Production: the key the answer was given to (or send it as X-Magic-Key).")


class FeedbackResponse(BaseModel):
    success: bool
    message: str


@router.post("/feedback", response_model=FeedbackResponse,
             responses={code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 429, 503)})
async def submit_feedback(body: FeedbackRequest, response: Response, database: DatabaseDep, settings: SettingsDep,
                          metrics: MetricsDep, delivery: FeedbackDeliveryDep, limits: RateLimitsDep,
                          gate: KeyGateDep, client_ip: ClientIpDep, header_key: HeaderKeyDep) -> FeedbackResponse:
    """Record a rating of one answer; a later rating of the same answer replaces it."""
    key = await gate.check(body.magic_key or header_key)
    response.headers.update(await limits.hit("feedback", magic_key=key, client_ip=client_ip))
    await record_feedback(database=database, settings=settings, span_id=body.span_id,
                          feedback_type=body.feedback_type, comment=body.comment, metrics=metrics,
                          owner=key_owner(key))
    delivery.wake()
    return FeedbackResponse(success=True, message="Thank you for your feedback!")
