"""`python main.py ingest ...` and `python main.py seed`: fill the knowledge base, news and samples.

    python main.py ingest kb <folder | urls.txt | file.md> ... [--reembed] [--timeout S]
    python main.py ingest kb --reembed            # re-embed every chunk with the configured model
    python main.py ingest news <feed file | feed URL> ... [--feed-url URL] [--timeout S]
    python main.py ingest samples <file.json> ...
    python main.py seed                           # the shipped knowledge base, news and samples
    python main.py keys add [--note TEXT] | disable KEY | enable KEY | list   # magic keys (stored hashed)

Storage and embedder are opened from the same settings as the app (no agent or model is built).
Each input shows a progress bar; bad inputs are reported and skipped; a summary line ends the
run. Exit status: 0 when every input was used, 1 when some were skipped, 2 for usage errors and
fatal problems (database in use, embedding model mismatch, embeddings endpoint unreachable,
re-embed interrupted: it builds the new vectors aside, so the previous ones keep serving and a new
run resumes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

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


class Run:
    """What one command did: counts for the summary and the problems met."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def problem(self, message: str) -> None:
        self.problems.append(message)
        tqdm.write(f"skipped: {message}", file=sys.stderr)

    def bar(self, total: int | None, desc: str, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True)

    def summary(self, title: str) -> None:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts.items()) or "nothing to do"
        extra = f"; {len(self.problems)} skipped (see above)" if self.problems else ""
        print(f"{title}: {counts}{extra}", file=self.out)


async def _open_kb(settings: Settings, database: Any, stack: AsyncExitStack):
    """The embedder and knowledge base exactly as the app builds them (no agent, no model)."""
    from services.core.openai_client import open_embedding_client
    from services.retrieval.embeddings import create_embedder
    from services.retrieval.knowledge_base import KnowledgeBase

    client = open_embedding_client(settings, timeout_seconds=120, max_retries=3)  # batches of 256 texts
    if client is not None:
        stack.push_async_callback(client.close)
    return KnowledgeBase(database=database, embedder=create_embedder(settings, client), settings=settings)


async def run_command(argv: list[str], *, settings: Settings | None = None, out: TextIO = sys.stdout) -> int:
    """Parse `argv` and run the command; the async entry (tests call this)."""
    from services.content.setup import ensure_content_indexes
    from services.storage.database import ensure_indexes, open_database
    from services.core.errors import StartupError

    args = build_parser().parse_args(argv)
    if args.command == "kb":
        return _kb_audit(args, settings or Settings(), out)
    if args.command in (None, "serve"):
        print("serve: run `python main.py` (the server is started by main.py)", file=sys.stderr)
        return EXIT_FATAL
    if args.command == "ingest" and args.kind == "kb" and not args.sources and not args.reembed:
        print("ingest kb: give a folder, file or URL list, or --reembed", file=sys.stderr)
        return EXIT_FATAL
    settings = settings or Settings()
    run = Run(out)
    try:
        async with AsyncExitStack() as stack:
            database = await open_database(settings)
            stack.push_async_callback(database.close)
            await ensure_indexes(database, conversation_retention_days=settings.conversation_retention_days)
            await ensure_content_indexes(database)
            if args.command == "keys":
                return await _keys(args, database, out)
            if args.command == "seed":
                await _seed(run, settings, database, stack)
            elif args.kind == "kb":
                await _ingest_kb(run, args, settings, database, stack)
            elif args.kind == "news":
                await _ingest_news(run, args, database)
            else:
                await _ingest_samples(run, args, database)
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


# --- commands -------------------------------------------------------------------------------------


async def _keys(args: argparse.Namespace, database: Any, out: TextIO) -> int:
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


def _kb_audit(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
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


async def _seed(run: Run, settings: Settings, database: Any, stack: AsyncExitStack) -> None:
    from services.content.setup import seed_content
    from services.ingest.kb_sync import seed_knowledge_base
    from services.retrieval.corpus import DEFAULT_KB_DIR

    kb = await _open_kb(settings, database, stack)
    await kb.check_model()
    with run.bar(len(list(DEFAULT_KB_DIR.rglob("*.md"))), "knowledge base", "doc") as bar:
        report = await seed_knowledge_base(database=database, kb=kb, progress=bar.update, on_problem=run.problem)
    run.counts.update({"articles added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                       "removed": report.removed, "chunks written": report.chunks_written})
    content = await seed_content(database=database, force=True)
    for problem in content.problems:
        run.problem(problem)
    run.counts.update({"news added": content.news_added, "news updated": content.news_updated,
                       "samples added": content.samples_added, "samples updated": content.samples_updated})
    run.summary("seed")


async def _ingest_kb(run: Run, args: argparse.Namespace, settings: Settings, database: Any,
                     stack: AsyncExitStack) -> None:
    from services.storage.database import CHUNKS
    from services.ingest.reembed import reembed_all

    kb = await _open_kb(settings, database, stack)
    if args.reembed:  # the fix for a model mismatch, so it must not be refused by the check
        total = await database[CHUNKS].count_documents({})
        with run.bar(total, f"re-embedding ({kb.embedder.model_id})", "chunk") as bar:
            run.add("chunks re-embedded", await reembed_all(database=database, kb=kb, progress=bar.update))
    else:
        await kb.check_model()
    if args.sources:
        import aiohttp

        for name in ("added", "updated", "unchanged", "removed", "chunks written"):
            run.add(name, 0)

        session = await stack.enter_async_context(aiohttp.ClientSession())
        for source in args.sources:
            await _ingest_kb_source(run, Path(source), kb=kb, database=database, session=session, timeout=args.timeout)
    run.summary("knowledge base")


async def _ingest_kb_source(run: Run, path: Path, *, kb: Any, database: Any, session: Any, timeout: float) -> None:
    from services.retrieval.corpus import DEFAULT_KB_DIR, ArticleError
    from services.ingest.sources import (HTML_SUFFIXES, MARKDOWN_SUFFIXES, SourceError, article_from_fetched,
                                         fetch, kb_files, read_kb_file, read_url_list)

    articles, failed = [], set()
    if path.is_dir():
        folder = path.resolve()
        seed = folder == DEFAULT_KB_DIR.resolve()
        origin = "seed" if seed else f"folder:{folder}"  # the shipped folder keeps the startup seed's ids
        for file in kb_files(folder):
            relative = file.relative_to(folder).with_suffix("").as_posix()
            doc_id = relative if seed else f"{folder}/{relative}"
            try:
                articles.append(read_kb_file(file, doc_id=doc_id))
            except ArticleError as exc:
                failed.add(doc_id)
                run.problem(str(exc))
    elif path.is_file() and path.suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES:
        origin = f"file:{path.resolve()}"
        try:
            articles.append(read_kb_file(path, doc_id=str(path.resolve())))
        except ArticleError as exc:
            run.problem(str(exc))
            return
    elif path.is_file():
        origin = f"urls:{path.resolve()}"
        try:
            urls, problems = read_url_list(path)
        except (OSError, UnicodeDecodeError):
            run.problem(f"{path}: not a readable text file of URLs")
            return
        for problem in problems:
            run.problem(problem)
        with run.bar(len(urls), f"fetching {path.name}", "url") as bar:
            for url in urls:
                try:
                    articles.append(article_from_fetched(url, *await fetch(session, url, timeout=timeout)))
                except (SourceError, ArticleError) as exc:
                    failed.add(url)  # keep what an earlier run stored: the failure may be temporary
                    run.problem(str(exc))
                bar.update(1)
    else:
        run.problem(f"{path}: no such folder or file")
        return
    await _sync(run, articles, failed, origin=origin, kb=kb, database=database, label=path.name or str(path))


async def _sync(run: Run, articles: list, failed: set[str], *, origin: str, kb: Any, database: Any, label: str) -> None:
    """Write changed articles, then drop this origin's documents that are gone (not merely failing)."""
    from services.storage.database import KB_DOCUMENTS
    from services.ingest.kb_sync import remove_document, sync_articles

    with run.bar(len(articles), f"embedding {label}", "doc") as bar:
        report = await sync_articles(database=database, kb=kb, articles=articles, origin=origin, prune=False,
                                     progress=bar.update)
    keep = {a.doc_id for a in articles} | failed
    known = await database[KB_DOCUMENTS].find({"origin": origin}, {"doc_id": 1}).to_list()
    for doc_id in sorted({d["doc_id"] for d in known} - keep):
        await remove_document(database=database, kb=kb, doc_id=doc_id)
        run.add("removed")
    run.add("added", report.added)
    run.add("updated", report.updated)
    run.add("unchanged", report.unchanged)
    run.add("chunks written", report.chunks_written)


async def _ingest_news(run: Run, args: argparse.Namespace, database: Any) -> None:
    import aiohttp

    from services.ingest.sources import SourceError, fetch, parse_feed
    from services.content.news import upsert_feed_item

    run.counts.update({"added": 0, "updated": 0})
    async with aiohttp.ClientSession() as session:
        for source in args.sources:
            is_url = source.startswith(("http://", "https://"))
            try:
                if is_url:
                    _, _, data = await fetch(session, source, timeout=args.timeout)
                else:
                    data = Path(source).read_bytes()
                feed = parse_feed(data, name=source, feed_url=args.feed_url or (source if is_url else None))
            except OSError:
                run.problem(f"{source}: no such file or not readable")
                continue
            except SourceError as exc:
                run.problem(str(exc))
                continue
            for problem in feed.problems:
                run.problem(problem)
            with run.bar(len(feed.items), Path(source).name if not is_url else source, "item") as bar:
                for item in feed.items:
                    run.add("added" if await upsert_feed_item(database=database, item=item) else "updated")
                    bar.update(1)
    run.summary("news")


async def _ingest_samples(run: Run, args: argparse.Namespace, database: Any) -> None:
    from services.ingest.sources import SourceError, read_samples_file
    from services.content.samples import upsert_sample

    run.counts.update({"added": 0, "updated": 0})
    for source in args.sources:
        try:
            samples, problems = read_samples_file(Path(source))
        except SourceError as exc:
            run.problem(str(exc))
            continue
        for problem in problems:
            run.problem(problem)
        with run.bar(len(samples), Path(source).name, "sample") as bar:
            for sample in samples:
                run.add("added" if await upsert_sample(database=database, sample=sample) else "updated")
                bar.update(1)
    run.summary("samples")
