"""Why a turn failed, told honestly: each exception becomes one `Failure` (kind, message for a person, retry hint).

The kinds and what `/v1` answers for them (non-streaming; `/api/chat` shows the message in its error line):

| kind | when | status |
|---|---|---|
| rate_limited | the model endpoint answered 429 after our retries | 429 + Retry-After |
| busy | 5xx, connection refused/reset/cut, per-call timeout, `response.failed` for a server error | 503 + Retry-After |
| timeout | the turn passed `CHAT_DEADLINE_SECONDS` | 504 |
| bad_reply | an empty, non-SSE or malformed reply, another terminal failure | 502 |
| max_turns | the model kept calling tools past the step limit | 500 |
| error | anything else (our bug, a 4xx from the endpoint such as a bad key) | 500 |
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

ERROR_TEXT = "Sorry, something went wrong while answering. Please try again in a moment."
BUSY_TEXT = "The model is busy right now. Please try again in a moment."
TIMEOUT_TEXT = "The answer took too long. Please try again in a moment, or ask a narrower question."
BAD_REPLY_TEXT = "The model sent an empty or unreadable reply. Please try again in a moment."
MAX_TURNS_TEXT = "The assistant needed too many steps for this question. Please ask a narrower question."
DEFAULT_RETRY_AFTER = {"rate_limited": 10, "busy": 5}
MAX_RETRY_AFTER = 300
STATUS = {"rate_limited": 429, "busy": 503, "timeout": 504, "bad_reply": 502, "max_turns": 500, "error": 500}


class RunDeadlineExceeded(TimeoutError):
    """The turn ran past its total deadline."""


class EmptyReply(RuntimeError):
    """The run completed with no text and no tool output: never stored as a completed turn."""


@dataclass(frozen=True)
class Failure:
    kind: str
    message: str
    retry_after: int | None = None

    @property
    def status(self) -> int:
        return STATUS.get(self.kind, 500)


def _retry_after(exc: BaseException, kind: str) -> int:
    """The endpoint's Retry-After (seconds or -ms), else our default for `kind`, within 1..300 s."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    seconds = None
    try:
        if headers.get("retry-after-ms"):
            seconds = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after"):
            seconds = float(headers["retry-after"])
    except (TypeError, ValueError):  # an HTTP date or garbage: use the default
        seconds = None
    if seconds is None:
        seconds = DEFAULT_RETRY_AFTER.get(kind, 5)
    return int(min(MAX_RETRY_AFTER, max(1, round(seconds + 0.49))))


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException) -> Failure:
    """The failure a person is told about for `exc` (logged by the caller with its traceback)."""
    import openai
    from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError

    if isinstance(exc, RunDeadlineExceeded):
        return Failure("timeout", TIMEOUT_TEXT)
    if isinstance(exc, EmptyReply):
        return Failure("bad_reply", BAD_REPLY_TEXT)
    if isinstance(exc, MaxTurnsExceeded):
        return Failure("max_turns", MAX_TURNS_TEXT)
    for cause in _chain(exc):
        if isinstance(cause, openai.RateLimitError):
            return Failure("rate_limited", BUSY_TEXT, _retry_after(cause, "rate_limited"))
        if isinstance(cause, openai.APIStatusError):
            if cause.status_code >= 500 or cause.status_code in (408, 409):
                return Failure("busy", BUSY_TEXT, _retry_after(cause, "busy"))
            return Failure("error", ERROR_TEXT)  # 4xx: our request or our key is wrong, not worth a retry
        if isinstance(cause, openai.APIConnectionError):  # refused, reset, cut mid-stream, per-call timeout
            return Failure("busy", BUSY_TEXT, _retry_after(cause, "busy"))
        if isinstance(cause, openai.APIError):  # an error object inside a stream
            return Failure("bad_reply", BAD_REPLY_TEXT)
        if isinstance(cause, ModelBehaviorError):
            text = str(cause)
            if "response.failed" in text and ("server_error" in text or "rate_limit" in text):
                return Failure("busy", BUSY_TEXT, DEFAULT_RETRY_AFTER["busy"])
            return Failure("bad_reply", BAD_REPLY_TEXT)
        if isinstance(cause, json.JSONDecodeError):  # a malformed stream event
            return Failure("bad_reply", BAD_REPLY_TEXT)
    return Failure("error", ERROR_TEXT)
