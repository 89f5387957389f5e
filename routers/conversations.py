"""GET /api/conversations/{id}: the stored turns of one conversation (production: the key's own only)."""

from fastapi import APIRouter, Path

from models import Conversation, ErrorResponse
from routers.deps import DatabaseDep, HeaderKeyDep, KeyGateDep
from services.storage.conversations import conversation_for
from services.storage.keys import key_owner

router = APIRouter(prefix="/api", tags=["conversations"])


@router.get("/conversations/{conversation_id}", response_model=Conversation,
            responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
                       404: {"model": ErrorResponse}, 429: {"model": ErrorResponse}})
async def read_conversation(database: DatabaseDep, gate: KeyGateDep, header_key: HeaderKeyDep,
                            conversation_id: str = Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")) -> Conversation:
    """Return a conversation's turns, oldest first; in production only to the key that created it."""
    owner = key_owner(await gate.check(header_key))
    doc = await conversation_for(database, conversation_id, owner=owner)
    return Conversation(conversation_id=conversation_id, created_at=doc.get("created_at"),
                        updated_at=doc.get("updated_at"), turns=doc.get("turns", []))
