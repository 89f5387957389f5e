"""Pydantic models of the public API (requests and responses)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_MESSAGE_CHARS = 4000
MAX_HISTORY_ITEMS = 50  # what /v1 keeps of a request's earlier messages; /api/chat trims to a budget
MAX_HISTORY_ITEM_CHARS = 20_000
MAX_FILTER_CHARS = 100


# Both storage engines return aware UTC datetimes (the embedded facade converts litemongo's naive ones).
UtcDatetime = dt.datetime


class HistoryMessage(BaseModel):
    role: Literal["user", "assistant"] = Field(description="Only 'user' and 'assistant' turns are accepted.")
    content: str | None = Field(default="", description=f"Text beyond {MAX_HISTORY_ITEM_CHARS} characters is cut.")

    @field_validator("content", mode="after")
    @classmethod
    def _bounded(cls, value: str | None) -> str:
        return (value or "")[:MAX_HISTORY_ITEM_CHARS]


class ChatFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dotnetVersion: str | None = Field(default=None, max_length=MAX_FILTER_CHARS, examples=[".NET 9"])
    aiLibrary: str | None = Field(default=None, max_length=MAX_FILTER_CHARS, examples=["Semantic Kernel"])
    aiProvider: str | None = Field(default=None, max_length=MAX_FILTER_CHARS, examples=["OpenAI"])

    def active(self) -> dict[str, str]:
        return {k: v.strip() for k, v in self.model_dump().items() if v and v.strip()}


class ChatRequest(BaseModel):
    message: str = Field(max_length=MAX_MESSAGE_CHARS, description=f"The question (at most {MAX_MESSAGE_CHARS} characters).",
                         examples=["How do I call an OpenAI chat model from C# with Microsoft.Extensions.AI?"])
    history: list[HistoryMessage] | None = Field(
        default=None, description="The earlier dialogue, any length that fits the body limit; the server keeps the "
                                  "newest turns within its budget and drops exact repeats.")
    filters: ChatFilters | None = Field(default=None, description="Preferences that shape ranking and the prompt.")
    magic_key: str | None = Field(default=None, max_length=200)
    conversation_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                        description="Send back the id from the metadata line to continue a conversation.")


class Source(BaseModel):
    title: str
    url: str
    score: float | None = None


class ConversationTurn(BaseModel):
    span_id: str
    user: str
    assistant: str
    sources: list[Source] = Field(default_factory=list)
    filters: dict[str, Any] = Field(default_factory=dict)
    status: str = Field(description="completed, or failed (then `error` says what the person was told)")
    timestamp: UtcDatetime
    usage: dict[str, int] | None = Field(default=None, description="Model tokens: input_tokens, output_tokens, total_tokens")
    error: str | None = None


class Conversation(BaseModel):
    conversation_id: str
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    turns: list[ConversationTurn]


class ComponentStatus(BaseModel):
    ready: bool
    detail: str = ""


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded"]
    version: str
    timestamp: dt.datetime
    environment: str
    components: dict[str, ComponentStatus]
    kb_oldest_verified: dt.date | None = Field(
        default=None, description="The oldest `verified` date among the knowledge base's articles (None: none dated).")


class ErrorResponse(BaseModel):
    detail: str
