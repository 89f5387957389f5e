"""POST /api/chat: validate, check the key, stream the agent's answer as NDJSON."""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from models import ChatRequest, ErrorResponse
from routers.deps import ChatRunnerDep, DatabaseDep, RateLimitsDep, SettingsDep
from services.agent.history import trim_history
from services.agent.run import ChatTurn
from services.core.errors import BadRequest
from services.storage.keys import check_magic_key
from web.ndjson import NDJSON_HEADERS, ndjson_stream

router = APIRouter(prefix="/api", tags=["chat"])


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object per line: metadata, content, tool_call, tool output, then complete or error."},
        400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
    },
)
async def chat(body: ChatRequest, request: Request, runner: ChatRunnerDep, database: DatabaseDep,
               settings: SettingsDep, limits: RateLimitsDep) -> StreamingResponse:
    """Stream a grounded, cited answer to one question."""
    if not body.message.strip():
        raise BadRequest("The message is empty. Type a question about C#/.NET AI development.")
    key = await check_magic_key(database=database, settings=settings, key=body.magic_key)
    headers = limits.admit("chat", magic_key=key, client_ip=request.client.host if request.client else None)
    history = trim_history([h.model_dump() for h in body.history or []], max_items=settings.history_max_items,
                           max_chars=settings.history_max_chars)
    turn = ChatTurn(message=body.message.strip(), history=history,
                    filters=body.filters.active() if body.filters else {}, conversation_id=body.conversation_id)
    return StreamingResponse(ndjson_stream(runner.run(turn)), media_type="application/x-ndjson",
                             headers={**NDJSON_HEADERS, **headers})
