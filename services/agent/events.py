"""What one agent run takes (`ChatTurn`) and the typed events it yields, read by the two web adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from services.agent.tool_results import Source


@dataclass(frozen=True)
class Started:
    span_id: str
    conversation_id: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStarted:
    name: str
    arguments: str | None
    text: str  # for a person: "Searching the knowledge base for …"


@dataclass(frozen=True)
class ToolFinished:
    name: str
    sources: list[Source]
    error: str | None
    text: str  # for a person: "Found 3 results"


@dataclass(frozen=True)
class KeepAlive:
    """Nothing to send for `KEEPALIVE_SECONDS`: a sign of life for proxies and clients that time out idle streams."""


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Completed:
    span_id: str
    answer: str
    usage: Usage


@dataclass(frozen=True)
class Failed:
    """The turn failed; `kind` (see `services.agent.failures`) decides the HTTP status on `/v1`."""

    span_id: str
    message: str  # for a person, no internals
    kind: str = "error"
    retry_after: int | None = None  # seconds, for "busy" / "rate_limited"


RunEvent = Union[Started, TextDelta, ToolStarted, ToolFinished, KeepAlive, Completed, Failed]


@dataclass
class ChatTurn:
    """One question; `store` keeps it in a conversation (the NDJSON API), `/v1` is stateless.

    `identity` (the validated magic key's hash or the client IP, `services.core.rate_limits.identity`)
    is charged the turn's tokens against the daily budget.
    """

    message: str
    history: list[dict] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    conversation_id: str | None = None
    store: bool = True
    span_name: str = "chat"
    owner: str | None = None  # production: the hash of the magic key the stored conversation is bound to
    identity: str | None = None
