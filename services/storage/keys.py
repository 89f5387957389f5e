"""The magic-key gate: required in production, checked against `userRegistrations`."""

from __future__ import annotations

from services.storage.database import USERS, Database
from services.core.errors import KeyForbidden, KeyRequired
from services.core.settings import Settings


async def check_magic_key(*, database: Database, settings: Settings, key: str | None) -> str | None:
    """Pass in development (None); in production require a registered, enabled key and return it."""
    if settings.is_development:
        return None
    if not key or not key.strip():
        raise KeyRequired("A magic key is required. Ask the site owner for one.")
    user = await database[USERS].find_one({"_id": key.strip()})
    if user is None or user.get("is_enabled") is False:
        raise KeyForbidden("This magic key is not valid or has been disabled.")
    return key.strip()
