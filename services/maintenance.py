"""The bodies of `python main.py keys ...` and `python main.py kb audit` (parsed in services/cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from services.cli import EXIT_OK, EXIT_SKIPPED
from services.core.settings import Settings


async def keys_command(args: argparse.Namespace, database: Any, out: TextIO) -> int:
    """`keys add|disable|enable|list` on `userRegistrations`."""
    from services.storage.database import USERS
    from services.storage.keys import HASH_PREFIX, PREFIX_CHARS, find_key, new_key_document

    users = database[USERS]
    if args.action == "add":
        key, doc = new_key_document(note=args.note)
        await users.insert_one(doc)
        print(key, file=out)
        print(f"added {doc['_id'][:len(HASH_PREFIX) + 12]}...: this is the only time the key is shown; "
              "only its hash is stored", file=sys.stderr)
        return EXIT_OK
    if args.action == "list":
        for doc in await users.find({}).sort("_id", 1).to_list():
            ident = str(doc["_id"])
            hashed = ident.startswith(HASH_PREFIX)
            shown = ident if hashed else "(plaintext id)"
            prefix = doc.get("prefix") if hashed else ident[:PREFIX_CHARS]
            state = "disabled" if doc.get("is_enabled") is False else "enabled"
            created = doc.get("created_at")
            print("\t".join([shown, f"{prefix or ''}...", state, created.isoformat() if created else "-",
                             doc.get("note") or ""]), file=out)
        return EXIT_OK
    target = args.key.strip()
    doc = await users.find_one({"_id": target}) if target.startswith(HASH_PREFIX) else await find_key(database, target)
    if doc is None:
        print(f"{args.action}: no such key", file=sys.stderr)
        return EXIT_SKIPPED
    await users.update_one({"_id": doc["_id"]}, {"$set": {"is_enabled": args.action == "enable"}})
    print(f"{args.action}d", file=out)
    return EXIT_OK


def kb_audit(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Exit 0 when every article is dated, fresh and unique; 1 when something needs a maintainer."""
    import datetime as dt

    from services.ingest.audit import audit_articles
    from services.retrieval.corpus import DEFAULT_KB_DIR, load_articles

    articles, problems = [], []
    for folder in [Path(f) for f in args.folders] or [DEFAULT_KB_DIR]:
        found, bad = load_articles(folder)
        articles += found
        problems += bad
    days = args.max_age_days if args.max_age_days is not None else settings.kb_freshness_days
    report = audit_articles(articles, today=dt.date.today(), max_age_days=days)
    for problem in problems:
        print(f"unreadable: {problem}", file=out)
    for doc_id, verified in report.stale:
        print(f"stale: {doc_id} (verified {verified.isoformat()}, older than {days} days)", file=out)
    for doc_id in report.undated:
        print(f"undated: {doc_id} (no `verified:` in its front matter)", file=out)
    for a, b, why in report.duplicates:
        print(f"duplicate: {a} ~ {b} ({why})", file=out)
    oldest = report.oldest.isoformat() if report.oldest else "none"
    print(f"kb audit: {len(articles)} articles, {len(report.stale)} stale, {len(report.undated)} undated, "
          f"{len(report.duplicates)} duplicate pair(s); oldest verification {oldest}", file=out)
    return EXIT_OK if report.clean and not problems else EXIT_SKIPPED
