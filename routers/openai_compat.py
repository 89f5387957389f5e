"""OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, answered by the same agent."""

from typing import Annotated, Callable

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from routers.deps import ServicesDep
from services.errors import DomainError
from services.openai_compat import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    authorize,
    complete,
    domain_error_body,
    find_model,
    model_card,
    prepare_turn,
    stream_completion,
    validation_error_body,
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class OpenAIErrorRoute(APIRoute):
    """Errors on these routes use OpenAI's error JSON, which OpenAI clients parse into their exceptions."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:  # OpenAI answers schema errors with 400
                return JSONResponse(validation_error_body(list(exc.errors())), status_code=400)
            except DomainError as exc:
                headers = dict(getattr(exc, "headers", {}) or {})
                if getattr(exc, "retry_after", None) is not None:
                    headers["Retry-After"] = str(exc.retry_after)
                return JSONResponse(domain_error_body(exc), status_code=exc.status, headers=headers)

        return route_handler


router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIErrorRoute)
AuthHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]
_ERRORS = {code: {"description": "OpenAI error JSON: {\"error\": {\"message\", \"type\", \"param\", \"code\"}}"}
           for code in (400, 401, 403, 404)}


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "chat.completion, or with stream=true SSE chat.completion.chunk lines "
                                             "ending in data: [DONE]."}, **_ERRORS})
async def chat_completions(body: ChatCompletionRequest, services: ServicesDep, authorization: AuthHeader = None):
    """Answer the last user message with the domain-expert agent (streamed when `stream` is true)."""
    await authorize(services=services, authorization=authorization)
    turn = prepare_turn(body)
    if turn.stream:
        return StreamingResponse(stream_completion(services=services, turn=turn), media_type="text/event-stream",
                                 headers=SSE_HEADERS)
    return await complete(services=services, turn=turn)


@router.get("/models", response_model=ModelList, responses=_ERRORS)
async def list_models(services: ServicesDep, authorization: AuthHeader = None) -> ModelList:
    """List the one model this API serves."""
    await authorize(services=services, authorization=authorization)
    return ModelList(data=[model_card()])


@router.get("/models/{model_id}", response_model=ModelCard, responses=_ERRORS)
async def get_model(model_id: str, services: ServicesDep, authorization: AuthHeader = None) -> ModelCard:
    """Describe one model (only the domain expert exists)."""
    await authorize(services=services, authorization=authorization)
    return find_model(model_id)
