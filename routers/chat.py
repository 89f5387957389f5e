"""POST /api/chat: validate, check the key, stream the agent's answer as NDJSON."""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from models import ChatRequest, ErrorResponse
from routers.deps import (AdmissionDep, ChatRunnerDep, ClientIpDep, DatabaseDep, KeyGateDep, RateLimitsDep,
                          SettingsDep)
from services.agent.history import trim_history
from services.agent.run import ChatTurn
from services.core.errors import BadRequest
from services.core.rate_limits import identity
from services.storage.conversations import conversation_for
from services.storage.keys import key_owner
from web.ndjson import NDJSON_HEADERS, ndjson_stream

router = APIRouter(prefix="/api", tags=["chat"])


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object per line: metadata, content, tool_call, tool output, then complete or error; keepalive while the model is silent."},
        400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
        404: {"model": ErrorResponse, "description": "Production: `conversation_id` unknown or another key's."},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "MAX_CONCURRENT_CHATS chats are running: retry after Retry-After."},
    },
)
async def chat(body: ChatRequest, runner: ChatRunnerDep, database: DatabaseDep, settings: SettingsDep,
               limits: RateLimitsDep, gate: KeyGateDep, client_ip: ClientIpDep,
               admission: AdmissionDep) -> StreamingResponse:
    """Stream a grounded, cited answer to one question."""
    admission.refuse_if_full()  # first: a busy server says so at once (503), before any lookups
    if not body.message.strip():
        raise BadRequest("The message is empty. Type a question about C#/.NET AI development.")
    key = await gate.check(body.magic_key)
    who = identity(magic_key=key, client_ip=client_ip)
    runner.check_budget(who)
    headers = await limits.hit("chat", magic_key=key, client_ip=client_ip)
    owner = key_owner(key)
    if body.conversation_id and owner:  # production: only the key's own, server-issued conversations continue
        await conversation_for(database, body.conversation_id, owner=owner)
    history = trim_history([h.model_dump() for h in body.history or []], max_items=settings.history_max_items,
                           max_chars=settings.history_max_chars)
    turn = ChatTurn(message=body.message.strip(), history=history, filters=body.filters.active() if body.filters else {},
                    conversation_id=body.conversation_id, owner=owner, identity=who)
    slot = admission.acquire()  # held until the stream ends or is closed
    stream = ndjson_stream(runner.run(turn), coalesce_seconds=settings.stream_coalesce_ms / 1000)
    return StreamingResponse(slot.guard(stream), media_type="application/x-ndjson",
                             headers={**NDJSON_HEADERS, **headers})
