"""`python main.py keys add|disable|enable|list`: keys stored hashed, shown once, checked with older plaintext ones."""

from __future__ import annotations

import io
import re

from services.cli import EXIT_OK, EXIT_SKIPPED, run_command
from services.storage.database import USERS, open_database
from services.storage.keys import key_document_id
from tests.utils.app import quick_settings, running_app


async def keys(settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_command(["keys", *argv], settings=settings, out=out)
    return code, out.getvalue()


async def user_documents(settings) -> list[dict]:
    database = await open_database(settings)
    try:
        return await database[USERS].find({}).to_list()
    finally:
        await database.close()


async def models_status(client, key: str) -> int:
    return (await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).status_code


async def test_add_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    settings = quick_settings(tmp_path, environment="production")
    code, printed = await keys(settings, "add", "--note", "alice's laptop")
    assert code == EXIT_OK
    key = printed.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", key), printed

    (doc,) = await user_documents(settings)
    assert doc["_id"] == key_document_id(key) and doc["_id"].startswith("sha256:")
    assert doc["is_enabled"] is True and doc["note"] == "alice's laptop" and doc["prefix"] == key[:6]
    assert doc["created_at"] is not None
    assert key not in str(doc)  # the plaintext is nowhere in the store

    code, listed = await keys(settings, "list")
    assert code == EXIT_OK and key not in listed
    assert doc["_id"] in listed and f"{key[:6]}..." in listed and "enabled" in listed and "alice's laptop" in listed

    async with running_app(settings) as client:
        assert await models_status(client, key) == 200
        assert await models_status(client, key + "x") == 403
        assert await models_status(client, doc["_id"]) == 403  # the stored id is not a key


async def test_disable_and_enable_by_key_or_listed_id_and_plaintext_ids_still_work(tmp_path):
    settings = quick_settings(tmp_path, environment="production")
    _, printed = await keys(settings, "add")
    key = printed.strip()
    legacy = "legacy-plaintext-key-123"  # an existing deployment's document: `_id` is the key itself
    database = await open_database(settings)
    try:
        await database[USERS].insert_one({"_id": legacy})
        await database[USERS].insert_one({"_id": "legacy-disabled-key", "is_enabled": False})
    finally:
        await database.close()

    assert (await keys(settings, "disable", key))[0] == EXIT_OK
    assert (await keys(settings, "disable", legacy))[0] == EXIT_OK
    code, listed = await keys(settings, "list")
    assert listed.count("disabled") == 3 and legacy not in listed and "(plaintext id)" in listed
    async with running_app(settings) as client:
        assert await models_status(client, key) == 403
        assert await models_status(client, legacy) == 403

    assert (await keys(settings, "enable", key_document_id(key)))[0] == EXIT_OK  # by the id `list` shows
    assert (await keys(settings, "enable", legacy))[0] == EXIT_OK
    assert (await keys(settings, "enable", "no-such-key"))[0] == EXIT_SKIPPED
    async with running_app(settings) as client:
        assert await models_status(client, key) == 200
        assert await models_status(client, legacy) == 200
        assert await models_status(client, "legacy-disabled-key") == 403
