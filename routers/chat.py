"""POST /api/chat: validate, check the key, stream the agent's answer as NDJSON."""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from models import ChatRequest, ErrorResponse
from routers.deps import ServicesDep
from services.auth import check_magic_key
from services.chat import ChatTurn, stream_chat
from services.errors import BadRequest

router = APIRouter(prefix="/api", tags=["chat"])

NDJSON_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object per line: metadata, content, tool_call, tool output, then complete or error."},
        400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
    },
)
async def chat(body: ChatRequest, services: ServicesDep) -> StreamingResponse:
    """Stream a grounded, cited answer to one question."""
    if not body.message.strip():
        raise BadRequest("The message is empty. Type a question about C#/.NET AI development.")
    await check_magic_key(database=services.database, settings=services.settings, key=body.magic_key)
    turn = ChatTurn(
        message=body.message.strip(),
        history=[h.model_dump() for h in body.history],
        filters=body.filters.active(),
        conversation_id=body.conversation_id,
    )
    return StreamingResponse(stream_chat(services=services, turn=turn), media_type="application/x-ndjson",
                             headers=NDJSON_HEADERS)
