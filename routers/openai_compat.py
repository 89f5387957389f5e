"""OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, answered by the same agent run."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from routers.deps import ChatRunnerDep, DatabaseDep, RateLimitsDep, SettingsDep
from services.storage.keys import check_magic_key
from web.openai_compat import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    bearer_key,
    complete,
    find_model,
    model_card,
    prepare_turn,
    stream_completion,
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
router = APIRouter(prefix="/v1", tags=["openai-compatible"])
AuthHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]
_ERRORS = {code: {"description": "OpenAI error JSON: {\"error\": {\"message\", \"type\", \"param\", \"code\"}}"}
           for code in (400, 401, 403, 404, 429)}


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "chat.completion, or with stream=true SSE chat.completion.chunk lines "
                                             "ending in data: [DONE]."}, **_ERRORS})
async def chat_completions(body: ChatCompletionRequest, request: Request, runner: ChatRunnerDep,
                           database: DatabaseDep, settings: SettingsDep, limits: RateLimitsDep,
                           authorization: AuthHeader = None):
    """Answer the last user message with the domain-expert agent (streamed when `stream` is true)."""
    key = await check_magic_key(database=database, settings=settings, key=bearer_key(authorization))
    headers = limits.admit("chat", magic_key=key, client_ip=request.client.host if request.client else None)
    turn = prepare_turn(body)
    if turn.stream:
        return StreamingResponse(stream_completion(runner=runner, turn=turn), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **headers})
    completion = await complete(runner=runner, turn=turn)
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


@router.get("/models", response_model=ModelList, responses=_ERRORS)
async def list_models(database: DatabaseDep, settings: SettingsDep, authorization: AuthHeader = None) -> ModelList:
    """List the one model this API serves."""
    await check_magic_key(database=database, settings=settings, key=bearer_key(authorization))
    return ModelList(data=[model_card()])


@router.get("/models/{model_id}", response_model=ModelCard, responses=_ERRORS)
async def get_model(model_id: str, database: DatabaseDep, settings: SettingsDep,
                    authorization: AuthHeader = None) -> ModelCard:
    """Describe one model (only the domain expert exists)."""
    await check_magic_key(database=database, settings=settings, key=bearer_key(authorization))
    return find_model(model_id)
