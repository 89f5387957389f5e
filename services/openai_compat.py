"""The domain-expert agent behind OpenAI's Chat Completions shapes, for tools and apps that speak that API.

Each request is stateless, like OpenAI's: the last user message is the question and the earlier
user/assistant messages are its history. The client's system/developer messages are ignored on
purpose, so the agent's own instructions (grounding, citations, staying on topic) stay in charge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Literal

from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field

from models import MAX_HISTORY_ITEM_CHARS, MAX_HISTORY_ITEMS, MAX_MESSAGE_CHARS
from services.agent import ChatContext
from services.app_services import AppServices
from services.auth import check_magic_key
from services.chat import ERROR_TEXT, item_field, start_run, text_delta
from services.errors import BadRequest, DomainError, NotFound
from services.tracing import span_id_hex

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


# ---------------------------------------------------------------- errors and the key gate

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}
_ERROR_CODES = {401: "missing_api_key", 403: "invalid_api_key", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict:
    """OpenAI's error JSON: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": param,
                      "code": code or _ERROR_CODES.get(status)}}


def domain_error_body(exc: DomainError) -> dict:
    return error_body(exc.status, exc.message, code=getattr(exc, "code", None))


def validation_error_body(errors: list[dict]) -> dict:
    """A 400 body naming the first invalid field (never echoing the submitted value)."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", []) if p != "body"]
    param = ".".join(loc) or None
    message = first.get("msg", "Invalid request body.")
    if first.get("type") == "json_invalid":
        message, param = "The request body is not valid JSON.", None
    return error_body(400, f"{param}: {message}" if param else message, param=param, code="invalid_request")


def bearer_key(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def authorize(*, services: AppServices, authorization: str | None) -> None:
    """The magic key gate, with the key sent as `Authorization: Bearer <key>` (what OpenAI clients send)."""
    await check_magic_key(database=services.database, settings=services.settings, key=bearer_key(authorization))


# ---------------------------------------------------------------- running the agent

class CompatTurn(BaseModel):
    message: str
    history: list[dict[str, str]] = Field(default_factory=list)
    stream: bool = False
    include_usage: bool = False


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


class AgentRun:
    """One Runner run of the shared agent; `deltas()` yields answer text, then `usage` is set."""

    def __init__(self, *, services: AppServices, turn: CompatTurn) -> None:
        self.services, self.turn = services, turn
        self.span = services.tracing.tracer.start_span("chat.completions",
                                                       attributes={"openinference.span.kind": "CHAIN"})
        self.completion_id = f"chatcmpl-{span_id_hex(self.span)}"  # ties the answer to its trace for feedback
        self.created = int(time.time())
        self.usage = CompletionUsage()
        self._started = False

    def close(self) -> None:
        """End the span of a run whose answer was never requested (the client left before it began)."""
        if not self._started:
            self._started = True
            self.span.end()

    async def deltas(self) -> AsyncIterator[str]:
        self._started = True
        services, turn, span, metrics = self.services, self.turn, self.span, self.services.metrics
        record_content = services.settings.trace_include_content
        if record_content:
            span.set_attribute("input.value", turn.message)
        if metrics:
            metrics.chat_started()
        started, answer, result = asyncio.get_running_loop().time(), [], None
        try:
            context = ChatContext(knowledge_base=services.knowledge_base, settings=services.settings,
                                  nuget=services.nuget)
            items = [*turn.history, {"role": "user", "content": turn.message}]
            result = start_run(services, items, context=context, span=span)
            async for event in result.stream_events():
                delta = text_delta(event)
                if delta:
                    if metrics and not answer:
                        metrics.first_content(asyncio.get_running_loop().time() - started)
                    answer.append(delta)
                    yield delta
                elif event.type == "run_item_stream_event" and event.name == "tool_called" and metrics:
                    metrics.tool_called(item_field(event.item.raw_item, "name") or "")
            usage = result.context_wrapper.usage
            self.usage = CompletionUsage(prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens,
                                         total_tokens=usage.total_tokens)
            if record_content:
                span.set_attribute("output.value", "".join(answer))
            span.set_status(Status(StatusCode.OK))
            if metrics:
                metrics.chat_completed(asyncio.get_running_loop().time() - started)
        except BaseException as exc:  # cancelled (client left) or failed: stop the run, record, re-raise
            if result is not None:
                result.cancel()
            reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
            span.set_status(Status(StatusCode.ERROR, reason))
            if metrics:
                metrics.chat_failed(reason)
            raise
        finally:
            span.end()

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra: Any) -> str:
        body = {"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
                "model": MODEL_ID, "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}], **extra}
        return sse(body)


def sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


async def stream_completion(*, services: AppServices, turn: CompatTurn) -> AsyncIterator[str]:
    """SSE `data:` chunks in OpenAI's order: role, content deltas, finish, [usage], then `[DONE]`."""
    run = AgentRun(services=services, turn=turn)
    try:
        yield run.chunk({"role": "assistant", "content": ""})
        async for delta in run.deltas():
            yield run.chunk({"content": delta})
    except Exception:
        log.exception("chat completion stream failed (%s)", run.completion_id)
        # OpenAI's clients raise an APIError when a stream carries an error object.
        yield sse(error_body(500, ERROR_TEXT))
        yield sse("[DONE]")
        return
    finally:
        run.close()
    yield run.chunk({}, "stop")
    if turn.include_usage:
        yield sse({"id": run.completion_id, "object": "chat.completion.chunk", "created": run.created,
                   "model": MODEL_ID, "system_fingerprint": None, "choices": [], "usage": run.usage.model_dump()})
    yield sse("[DONE]")


class CompletionFailed(DomainError):
    status = 500


async def complete(*, services: AppServices, turn: CompatTurn) -> ChatCompletion:
    """The whole answer as one `chat.completion` object."""
    run = AgentRun(services=services, turn=turn)
    try:
        text = "".join([delta async for delta in run.deltas()])
    except Exception as exc:
        log.exception("chat completion failed (%s)", run.completion_id)
        raise CompletionFailed(ERROR_TEXT) from exc
    return ChatCompletion(id=run.completion_id, created=run.created, model=MODEL_ID,
                          choices=[Choice(message=CompletionMessage(content=text))], usage=run.usage)
