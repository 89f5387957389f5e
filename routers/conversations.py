"""GET /api/conversations/{id}: the stored turns of one conversation."""

from fastapi import APIRouter, Path

from models import Conversation, ErrorResponse
from routers.deps import DatabaseDep
from services.storage.conversations import get_conversation
from services.core.errors import NotFound

router = APIRouter(prefix="/api", tags=["conversations"])


@router.get("/conversations/{conversation_id}", response_model=Conversation, responses={404: {"model": ErrorResponse}})
async def read_conversation(database: DatabaseDep,
                            conversation_id: str = Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")) -> Conversation:
    """Return a conversation's turns, oldest first."""
    doc = await get_conversation(database, conversation_id)
    if doc is None:
        raise NotFound("Conversation not found")
    return Conversation(conversation_id=conversation_id, created_at=doc.get("created_at"),
                        updated_at=doc.get("updated_at"), turns=doc.get("turns", []))
