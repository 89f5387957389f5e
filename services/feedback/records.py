"""User feedback on an answer: stored first (durable), delivered to Phoenix/Arize later by `feedback_delivery`.

One row per span in `feedback` (`_id` = span id): rating the same answer again replaces the rating
and re-queues its delivery. Per target the row keeps `delivery.<target>` =
{state: pending|delivered|rejected, attempts, next_attempt_at, last_error, delivered_at}.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from services.storage.conversations import conversation_for_span, owned_by
from services.storage.database import FEEDBACK, Database
from services.core.errors import BadRequest, NotFound, ServiceUnavailable
from services.core.settings import Settings

log = logging.getLogger(__name__)

FEEDBACK_TYPES = ("thumbs_up", "thumbs_down")
SPAN_ID_PATTERN = r"^[0-9a-fA-F]{16}$"
MAX_COMMENT_CHARS = 2000
PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"
_SPAN_ID = re.compile(SPAN_ID_PATTERN)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def delivery_targets(settings: Settings) -> list[str]:
    """Where feedback goes, from what is configured now."""
    targets = []
    if settings.phoenix_collector_endpoint:
        targets.append("phoenix")
    if settings.arize_space_id and settings.arize_api_key:
        targets.append("arize")
    return targets


def pending_delivery(now: dt.datetime) -> dict:
    return {"state": PENDING, "attempts": 0, "next_attempt_at": now, "last_error": None, "delivered_at": None}


async def ensure_feedback_indexes(database: Database, targets: list[str]) -> None:
    """Indexes the delivery task queries by; idempotent."""
    for target in targets:
        await database[FEEDBACK].create_index([(f"delivery.{target}.state", 1), (f"delivery.{target}.next_attempt_at", 1)])
    await database[FEEDBACK].create_index("conversation_id")


async def record_feedback(*, database: Database, settings: Settings, span_id: str, feedback_type: str,
                          comment: str | None, metrics=None, owner: str | None = None) -> dict:
    """Store (or replace) the rating of one answer and queue it for delivery; returns the stored row.

    With `owner` (production: the key's hash) the span must be one this server issued to that key
    in a stored conversation, else NotFound; without it any well-formed span id is accepted.
    """
    if not _SPAN_ID.match(span_id or ""):
        raise BadRequest("span_id must be the 16 hexadecimal characters sent in the chat stream.")
    if feedback_type not in FEEDBACK_TYPES:
        raise BadRequest("feedback_type must be 'thumbs_up' or 'thumbs_down'.")
    span_id = span_id.lower()
    comment = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
    if owner is not None:
        conversation = await conversation_for_span(database, span_id)
        if not owned_by(conversation, owner):
            raise NotFound("No answer with this span_id was given to this magic key.")
        conversation_id = conversation["_id"]
    else:
        conversation_id = await _conversation_id(database, span_id)
    now = utcnow()
    fields = {"span_id": span_id, "feedback_type": feedback_type, "comment": comment,
              "conversation_id": conversation_id, "timestamp": now,
              "delivery": {target: pending_delivery(now) for target in delivery_targets(settings)}}
    try:
        # `revision` lets the delivery task tell a replaced rating from the one it just sent.
        await database[FEEDBACK].update_one({"_id": span_id},
                                            {"$set": fields, "$setOnInsert": {"created_at": now}, "$inc": {"revision": 1}},
                                            upsert=True)
        row = await database[FEEDBACK].find_one({"_id": span_id})
    except Exception:
        log.exception("could not store feedback for span %s", span_id)
        raise ServiceUnavailable("Your feedback could not be saved right now. Please try again in a moment.") from None
    if metrics is not None:
        metrics.feedback.labels(feedback_type=feedback_type).inc()
    return row


async def _conversation_id(database: Database, span_id: str) -> str | None:
    try:
        conversation = await conversation_for_span(database, span_id)
    except Exception:  # the link is a convenience; the rating itself must still be stored
        log.warning("could not look up the conversation of span %s", span_id, exc_info=True)
        return None
    return conversation["_id"] if conversation else None


async def get_feedback(database: Database, span_id: str) -> dict | None:
    return await database[FEEDBACK].find_one({"_id": span_id.lower()})
