"""The command line: `python main.py ingest ...`, `seed`, `kb audit` and `keys ...` (parsing and dispatch).

    python main.py ingest kb <folder | urls.txt | file.md> ... [--reembed] [--timeout S]
    python main.py ingest kb --reembed            # re-embed every chunk with the configured model
    python main.py ingest news <feed file | feed URL> ... [--feed-url URL] [--timeout S]
    python main.py ingest samples <file.json> ...
    python main.py seed                           # the shipped knowledge base, news and samples
    python main.py kb audit [folder ...] [--max-age-days N]   # stale, undated and duplicate articles
    python main.py keys add [--note TEXT] | disable KEY | enable KEY | list   # magic keys (stored hashed)

The commands' bodies are in services/ingest/commands.py (seed, ingest) and services/maintenance.py
(keys, kb audit). Exit status: 0 when every input was used, 1 when some were skipped, 2 for usage
errors and fatal problems (database in use, embedding model mismatch, embeddings endpoint
unreachable, re-embed interrupted: it builds the new vectors aside, so the previous ones keep
serving and a new run resumes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from typing import TextIO

from services.core.settings import Settings

EXIT_OK, EXIT_SKIPPED, EXIT_FATAL = 0, 1, 2


EXIT_STARTUP = 2  # `python main.py` (serve) could not start: one line on stderr says why


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py", description="C# AI Buddy API: serve it (the default), or fill its collections.",
        epilog="Exit status: 0 ok, 1 some inputs skipped, 2 usage error or fatal problem "
               "(data dir in use, knowledge base built by another embedding model).")
    commands = parser.add_subparsers(dest="command", metavar="{serve,ingest,seed,kb,keys}")
    serve = commands.add_parser("serve", help="run the API server (also what bare `python main.py` does)")
    serve.add_argument("--host", help="bind address (default HOST, else 127.0.0.1 in development, 0.0.0.0 in production)")
    serve.add_argument("--port", type=int, help="port (default PORT, else 8000)")
    ingest = commands.add_parser("ingest", help="ingest knowledge-base articles, news feeds or samples")
    kinds = ingest.add_subparsers(dest="kind", required=True)
    kb = kinds.add_parser("kb", help="Markdown/HTML folders, single files or files listing URLs → document_chunks")
    kb.add_argument("sources", nargs="*", help="folder, .md/.html file, or text file with one URL per line")
    kb.add_argument("--reembed", action="store_true", help="first re-embed every stored chunk with the configured model")
    kb.add_argument("--timeout", type=float, default=30.0, help="seconds per URL fetch (default 30)")
    news = kinds.add_parser("news", help="RSS/Atom feed files or URLs → documents (deduplicated by rss_item_id)")
    news.add_argument("sources", nargs="+", help="feed file or http(s) feed URL")
    news.add_argument("--feed-url", help="the feed's address to record when a file does not name it")
    news.add_argument("--timeout", type=float, default=30.0, help="seconds per feed fetch (default 30)")
    samples = kinds.add_parser("samples", help="JSON files of samples → samples (upserted by id)")
    samples.add_argument("sources", nargs="+", help="JSON array of samples")
    commands.add_parser("seed", help="load the shipped knowledge base, news and samples")
    kb_cmd = commands.add_parser("kb", help="knowledge-base maintenance")
    kb_actions = kb_cmd.add_subparsers(dest="action", required=True)
    audit = kb_actions.add_parser("audit", help="list stale (verified too long ago), undated and duplicate articles")
    audit.add_argument("folders", nargs="*", help="article folders (default: the shipped data/kb)")
    audit.add_argument("--max-age-days", type=int, default=None, help="default KB_FRESHNESS_DAYS (180)")
    keys = commands.add_parser("keys", help="manage magic keys (production access); keys are stored hashed")
    key_actions = keys.add_subparsers(dest="action", required=True)
    add = key_actions.add_parser("add", help="create a key and print it once (only its hash is stored)")
    add.add_argument("--note", help="who or what the key is for (shown by `keys list`)")
    for name, verb in (("disable", "refuse"), ("enable", "accept again")):
        action = key_actions.add_parser(name, help=f"{verb} a key")
        action.add_argument("key", help="the key itself, or its id as shown by `keys list` (sha256:...)")
    key_actions.add_parser("list", help="list keys: id, first characters, state, creation date, note")
    return parser


async def run_command(argv: list[str], *, settings: Settings | None = None, out: TextIO = sys.stdout) -> int:
    """Parse `argv` and run the command; the async entry (tests call this)."""
    from services.content.setup import ensure_content_indexes
    from services.core.errors import StartupError
    from services.ingest import commands as ingest
    from services.maintenance import keys_command
    from services.storage.database import ensure_indexes, open_database

    args = build_parser().parse_args(argv)
    if args.command == "kb":
        from services.maintenance import kb_audit

        return kb_audit(args, settings or Settings(), out)
    if args.command in (None, "serve"):
        print("serve: run `python main.py` (the server is started by main.py)", file=sys.stderr)
        return EXIT_FATAL
    if args.command == "ingest" and args.kind == "kb" and not args.sources and not args.reembed:
        print("ingest kb: give a folder, file or URL list, or --reembed", file=sys.stderr)
        return EXIT_FATAL
    settings = settings or Settings()
    run = ingest.Run(out)
    try:
        async with AsyncExitStack() as stack:
            database = await open_database(settings)
            stack.push_async_callback(database.close)
            await ensure_indexes(database, conversation_retention_days=settings.conversation_retention_days)
            await ensure_content_indexes(database)
            if args.command == "keys":
                return await keys_command(args, database, out)
            if args.command == "seed":
                await ingest.seed(run, settings, database, stack)
            elif args.kind == "kb":
                await ingest.ingest_kb(run, args, settings, database, stack)
            elif args.kind == "news":
                await ingest.ingest_news(run, args, database)
            else:
                await ingest.ingest_samples(run, args, database)
    except StartupError as exc:  # data dir in use, model mismatch, embeddings endpoint down, re-embed cut short
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_SKIPPED if run.problems else EXIT_OK


def run_cli(argv: list[str]) -> int:
    """The sync entry used by `main.py`."""
    try:
        return asyncio.run(run_command(argv))
    except SystemExit as exc:  # argparse usage errors and --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return 130
