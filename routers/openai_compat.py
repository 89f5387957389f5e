"""OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, answered by the same agent run."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from routers.deps import AdmissionDep, ChatRunnerDep, ClientIpDep, KeyGateDep, RateLimitsDep, SettingsDep
from services.core.rate_limits import identity
from web.openai_compat import (
    ChatCompletion,
    ChatCompletionRequest,
    ClientGone,
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
_MODEL_ERRORS = {503: {"description": "The model endpoint is busy or down, or MAX_CONCURRENT_CHATS chats are running "
                               "(Retry-After says when to retry)."},
                 502: {"description": "The model endpoint sent an empty or unreadable reply."},
                 504: {"description": "The answer took longer than CHAT_DEADLINE_SECONDS."}}


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "chat.completion, or with stream=true SSE chat.completion.chunk lines "
                                             "ending in data: [DONE]."}, **_ERRORS, **_MODEL_ERRORS})
async def chat_completions(body: ChatCompletionRequest, request: Request, runner: ChatRunnerDep,
                           limits: RateLimitsDep, gate: KeyGateDep, client_ip: ClientIpDep,
                           admission: AdmissionDep, settings: SettingsDep, authorization: AuthHeader = None):
    """Answer the last user message with the domain-expert agent (streamed when `stream` is true)."""
    admission.refuse_if_full()  # first: a busy server says so at once (503), before any lookups
    key = await gate.check(bearer_key(authorization))
    who = identity(magic_key=key, client_ip=client_ip)
    turn = prepare_turn(body).model_copy(update={"identity": who})  # a bad request is not counted as a hit
    runner.check_budget(who)
    headers = await limits.hit("chat", magic_key=key, client_ip=client_ip)
    slot = admission.acquire()  # held until the answer is complete, or the stream ends or is closed
    if turn.stream:
        stream = stream_completion(runner=runner, turn=turn, coalesce_seconds=settings.stream_coalesce_ms / 1000)
        return StreamingResponse(slot.guard(stream), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **headers})

    async def disconnected() -> None:  # the body is read: the next message is the hang-up
        while (await request.receive())["type"] != "http.disconnect":
            pass

    try:
        completion = await complete(runner=runner, turn=turn, disconnected=disconnected)
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it, metrics do
    finally:
        slot.release()
    return JSONResponse(completion.model_dump(mode="json"), headers=headers)


@router.get("/models", response_model=ModelList, responses=_ERRORS)
async def list_models(gate: KeyGateDep, authorization: AuthHeader = None) -> ModelList:
    """List the one model this API serves."""
    await gate.check(bearer_key(authorization))
    return ModelList(data=[model_card()])


@router.get("/models/{model_id}", response_model=ModelCard, responses=_ERRORS)
async def get_model(model_id: str, gate: KeyGateDep, authorization: AuthHeader = None) -> ModelCard:
    """Describe one model (only the domain expert exists)."""
    await gate.check(bearer_key(authorization))
    return find_model(model_id)
