"""GET /api/config: what the chat page needs to know about this deployment."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from routers.deps import SettingsDep

router = APIRouter(prefix="/api", tags=["site"])


class SiteConfig(BaseModel):
    # Kept next to its only route: the page is its only consumer.
    environment: Literal["development", "production"]
    requires_key: bool


@router.get("/config", response_model=SiteConfig)
async def site_config(settings: SettingsDep) -> SiteConfig:
    """Tell the page the mode and whether a magic key must be sent with each question."""
    development = settings.is_development
    return SiteConfig(environment="development" if development else "production", requires_key=not development)
