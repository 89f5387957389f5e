"""The magic-key gate: required in production, checked against `userRegistrations`.

Keys made by `python main.py keys add` are stored hashed (`_id` = "sha256:<hex>"), so the
collection holds no usable key. Documents whose `_id` is the plaintext key (existing deployments,
CONVENTIONS §4) keep working. The lookup is by the key's hash first; the value found is compared
with `hmac.compare_digest`, so a match never depends on how much of a guess was right.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from services.core.errors import KeyForbidden, KeyRequired
from services.core.settings import Settings
from services.storage.database import USERS, Database

if TYPE_CHECKING:
    from services.core.rate_limits import RateLimits

HASH_PREFIX = "sha256:"
PREFIX_CHARS = 6  # of a new key, kept in clear for `keys list`
MAX_KEY_CHARS = 512  # longer is no key of ours (headers can carry kilobytes): refused without a lookup


def key_hash(key: str) -> str:
    """The hex SHA-256 of a key: its stored id (after "sha256:") and the owner tag of its conversations."""
    return hashlib.sha256(key.strip().encode()).hexdigest()


def key_document_id(key: str) -> str:
    return HASH_PREFIX + key_hash(key)


def key_owner(key: str | None) -> str | None:
    """What conversations and feedback are bound to: the validated key's hash (None in development)."""
    return key_hash(key) if key else None


def new_key_document(*, note: str | None) -> tuple[str, dict]:
    """(plaintext key, its `userRegistrations` document); the plaintext is shown once and never stored."""
    key = secrets.token_urlsafe(32)
    return key, {"_id": key_document_id(key), "is_enabled": True, "created_at": dt.datetime.now(dt.timezone.utc),
                 "note": note, "prefix": key[:PREFIX_CHARS]}


async def find_key(database: Database, key: str) -> dict | None:
    """The registration of `key` (hashed or, for older deployments, plaintext `_id`), or None."""
    key = key.strip()
    hashed = key_document_id(key)
    # A stored hashed id is not a key: "sha256:..." is never looked up as a plaintext `_id`.
    candidates = [hashed] if key.startswith(HASH_PREFIX) else [hashed, key]
    found = await database[USERS].find({"_id": {"$in": candidates}}).to_list(2)
    for candidate in candidates:
        for doc in found:
            if isinstance(doc.get("_id"), str) and hmac.compare_digest(doc["_id"].encode(), candidate.encode()):
                return doc
    return None


async def check_magic_key(*, database: Database, settings: Settings, key: str | None) -> str | None:
    """Pass in development (None); in production require a registered, enabled key and return it."""
    if settings.is_development:
        return None
    if not key or not key.strip():
        raise KeyRequired("A magic key is required. Ask the site owner for one.")
    user = await find_key(database, key) if len(key.strip()) <= MAX_KEY_CHARS else None
    if user is None or user.get("is_enabled") is False:
        raise KeyForbidden("This magic key is not valid or has been disabled.")
    return key.strip()


class KeyGate:
    """`check_magic_key` for one request, with failed checks (401/403) counted per client IP.

    Once an address has spent its `key_failures` allowance every check from it is a 429 until the
    window ends, a correct key included: otherwise a guesser could keep guessing and spot the hit.
    """

    def __init__(self, *, database: Database, settings: Settings, limits: "RateLimits", client_ip: str | None) -> None:
        self.database, self.settings, self.limits, self.client_ip = database, settings, limits, client_ip

    async def check(self, key: str | None) -> str | None:
        """The validated key (production) or None (development); raises KeyRequired/KeyForbidden/RateLimited."""
        if self.settings.is_development:
            return None
        await self.limits.check_spent("key_failures", client_ip=self.client_ip)
        try:
            return await check_magic_key(database=self.database, settings=self.settings, key=key)
        except (KeyRequired, KeyForbidden):
            await self.limits.hit("key_failures", magic_key=None, client_ip=self.client_ip)
            raise
