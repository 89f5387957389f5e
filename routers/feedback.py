"""POST /api/feedback: a thumbs up/down (and optional comment) on one answer, stored then forwarded."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from models import ErrorResponse
from fastapi import Request, Response

from routers.deps import DatabaseDep, FeedbackDeliveryDep, MetricsDep, RateLimitsDep, SettingsDep
from services.feedback.records import MAX_COMMENT_CHARS, SPAN_ID_PATTERN, record_feedback

router = APIRouter(prefix="/api", tags=["feedback"])


class FeedbackRequest(BaseModel):
    span_id: str = Field(pattern=SPAN_ID_PATTERN, description="The 16-hex span id from the chat stream's metadata/complete line.",
                         examples=["9f2c4e1a7b3d5f60"])
    feedback_type: Literal["thumbs_up", "thumbs_down"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class FeedbackResponse(BaseModel):
    success: bool
    message: str


@router.post("/feedback", response_model=FeedbackResponse,
             responses={400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
async def submit_feedback(body: FeedbackRequest, request: Request, response: Response, database: DatabaseDep,
                          settings: SettingsDep, metrics: MetricsDep, delivery: FeedbackDeliveryDep,
                          limits: RateLimitsDep) -> FeedbackResponse:
    """Record a rating of one answer; a later rating of the same answer replaces it."""
    response.headers.update(limits.admit("feedback", magic_key=None,
                                         client_ip=request.client.host if request.client else None))
    await record_feedback(database=database, settings=settings, span_id=body.span_id,
                          feedback_type=body.feedback_type, comment=body.comment, metrics=metrics)
    delivery.wake()
    return FeedbackResponse(success=True, message="Thank you for your feedback!")
