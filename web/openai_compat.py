"""OpenAI's Chat Completions wire shapes over the one agent run, for tools and apps that speak that API.

Each request is stateless, like OpenAI's: the last user message is the question and the earlier
user/assistant messages are its history. The client's system/developer messages are ignored on
purpose, so the agent's own instructions (grounding, citations, staying on topic) stay in charge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import AsyncIterator, Awaitable, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from models import MAX_HISTORY_ITEM_CHARS, MAX_HISTORY_ITEMS, MAX_MESSAGE_CHARS
from services.agent.run import ChatRunner, ChatTurn, Completed, Failed, KeepAlive, Started, TextDelta
from services.core.errors import BadRequest, DomainError, NotFound
from web.errors import openai_error_body
from web.ndjson import coalesce_text

log = logging.getLogger(__name__)
MODEL_ID = "csharp-ai-buddy"
MODEL_CREATED = 1767225600  # 2026-01-01T00:00:00Z: fixed, so the model list is stable
OWNER = "csharp-ai-buddy"
MAX_MESSAGES = MAX_HISTORY_ITEMS + 20  # room for system/tool messages clients add around the dialogue


class ModelNotFound(NotFound):
    code = "model_not_found"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class CompatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type in ("text", "input_text", "output_text") and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The Chat Completions request; sampling options are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(max_length=200, examples=[MODEL_ID])
    messages: list[CompatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is produced.")


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def model_card() -> ModelCard:
    return ModelCard(id=MODEL_ID, created=MODEL_CREATED, owned_by=OWNER)


def find_model(model_id: str) -> ModelCard:
    if model_id != MODEL_ID:
        raise ModelNotFound(f"The model '{model_id[:100]}' does not exist. Use '{MODEL_ID}' (see GET /v1/models).")
    return model_card()


# ---------------------------------------------------------------- the key and the turn

def bearer_key(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


# ---------------------------------------------------------------- running the agent

class CompatTurn(BaseModel):
    message: str
    history: list[dict[str, str]] = Field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    identity: str | None = None  # who is charged the tokens (services.core.rate_limits.identity)


def prepare_turn(request: ChatCompletionRequest) -> CompatTurn:
    """Check the model and split the messages into the question and its history."""
    find_model(request.model)
    dialogue = [m for m in request.messages if m.role in ("user", "assistant")]
    if not dialogue or dialogue[-1].role != "user":
        raise BadRequest("The last message must come from the user: it is the question the assistant answers.")
    message = dialogue[-1].text().strip()
    if not message:
        raise BadRequest("The last user message has no text. Ask a question about C#/.NET AI development.")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"The last user message is longer than {MAX_MESSAGE_CHARS} characters.")
    history = [{"role": m.role, "content": m.text()[:MAX_HISTORY_ITEM_CHARS]} for m in dialogue[:-1] if m.text().strip()]
    return CompatTurn(message=message, history=history[-MAX_HISTORY_ITEMS:], stream=request.stream,
                      include_usage=bool(request.stream_options and request.stream_options.include_usage))


KEEPALIVE_COMMENT = ": keepalive\n\n"  # an SSE comment: clients skip it, proxies see a live stream


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


class CompletionRun:
    """One `/v1` answer: the shared agent run, seen as Chat Completions chunks or one object."""

    def __init__(self, *, runner: ChatRunner, turn: CompatTurn, coalesce_seconds: float = 0.0) -> None:
        self.turn = turn
        self.events = runner.run(ChatTurn(message=turn.message, history=turn.history, store=False,
                                          span_name="chat.completions", identity=turn.identity))
        if coalesce_seconds > 0:  # fewer, larger content chunks from a fast model (web/ndjson.py)
            self.events = coalesce_text(self.events, window=coalesce_seconds)
        self.completion_id = ""
        self.created = int(time.time())
        self.usage = CompletionUsage()

    async def deltas(self) -> AsyncIterator[str | None]:
        """Answer text, None for a keepalive (nothing to send for a while); raises CompletionFailed if the run failed."""
        async for event in self.events:
            if isinstance(event, Started):
                self.completion_id = f"chatcmpl-{event.span_id}"  # ties the answer to its trace for feedback
            elif isinstance(event, TextDelta):
                yield event.text
            elif isinstance(event, KeepAlive):
                yield None
            elif isinstance(event, Completed):
                u = event.usage
                self.usage = CompletionUsage(prompt_tokens=u.input_tokens, completion_tokens=u.output_tokens,
                                             total_tokens=u.total_tokens)
            elif isinstance(event, Failed):
                raise CompletionFailed.of(event)

    async def start(self) -> None:
        """Run until the span id is known (the first event), so chunks can carry the completion id."""
        first = await anext(self.events)
        assert isinstance(first, (Started, Failed))
        if isinstance(first, Failed):
            raise CompletionFailed.of(first)
        self.completion_id = f"chatcmpl-{first.span_id}"

    async def close(self) -> None:
        await self.events.aclose()

    def chunk(self, delta: dict, finish_reason: str | None = None) -> str:
        return sse({"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
                    "model": MODEL_ID, "system_fingerprint": None,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]})


class CompletionFailed(DomainError):
    """A failed run in OpenAI's terms: 429/503 with Retry-After when the model is busy (see services.agent.failures)."""

    status = 500
    _CODES = {"rate_limited": "rate_limit_exceeded", "busy": "model_busy", "timeout": "timeout",
              "bad_reply": "bad_upstream_reply", "max_turns": "max_turns_exceeded"}

    @classmethod
    def of(cls, failed: Failed) -> "CompletionFailed":
        from services.agent.failures import STATUS

        error = cls(failed.message, retry_after=failed.retry_after)
        error.status, error.code = STATUS.get(failed.kind, 500), cls._CODES.get(failed.kind)
        return error


async def stream_completion(*, runner: ChatRunner, turn: CompatTurn,
                            coalesce_seconds: float = 0.0) -> AsyncIterator[str]:
    """SSE `data:` chunks in OpenAI's order: role, content deltas, finish, [usage], then `[DONE]`.

    Deltas closer together than `coalesce_seconds` share one chunk (STREAM_COALESCE_MS).
    """
    run = CompletionRun(runner=runner, turn=turn, coalesce_seconds=coalesce_seconds)
    try:
        await run.start()
        yield run.chunk({"role": "assistant", "content": ""})
        async for delta in run.deltas():
            yield KEEPALIVE_COMMENT if delta is None else run.chunk({"content": delta})
    except CompletionFailed as exc:
        # OpenAI's clients raise an APIError when a stream carries an error object.
        yield sse(openai_error_body(exc.status, exc.message, code=exc.code))
        yield sse("[DONE]")
        return
    finally:
        await run.close()
    yield run.chunk({}, "stop")
    if turn.include_usage:
        yield sse({"id": run.completion_id, "object": "chat.completion.chunk", "created": run.created,
                   "model": MODEL_ID, "system_fingerprint": None, "choices": [], "usage": run.usage.model_dump()})
    yield sse("[DONE]")


class ClientGone(Exception):
    """The client hung up before the whole answer was ready; the run was cancelled."""


async def complete(*, runner: ChatRunner, turn: CompatTurn,
                   disconnected: Callable[[], Awaitable[None]] | None = None) -> ChatCompletion:
    """The whole answer as one `chat.completion` object.

    `disconnected` returns when the client hangs up: the run is then cancelled (nobody would read
    its answer) and `ClientGone` raised, as a streamed answer's run is cancelled by its stream.
    """
    run = CompletionRun(runner=runner, turn=turn)

    async def answer() -> str:
        await run.start()
        return "".join([delta async for delta in run.deltas() if delta is not None])

    task = asyncio.ensure_future(answer())
    watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
    try:
        await asyncio.wait({task, watcher} - {None}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientGone()
        text = task.result()
    finally:
        for pending in (task, watcher):
            if pending is not None and not pending.done():
                pending.cancel()
        await asyncio.gather(*(t for t in (task, watcher) if t is not None), return_exceptions=True)
        await run.close()
    return ChatCompletion(id=run.completion_id, created=run.created, model=MODEL_ID,
                          choices=[Choice(message=CompletionMessage(content=text))], usage=run.usage)
