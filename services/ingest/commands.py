"""The bodies of `python main.py seed` and `python main.py ingest kb|news|samples` (parsed in services/cli.py).

Storage and embedder are opened from the same settings as the app (no agent or model is built).
Each input shows a progress bar; bad inputs are reported and skipped; a summary line ends the run.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from services.core.settings import Settings


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


async def open_kb(settings: Settings, database: Any, stack: AsyncExitStack):
    """The embedder and knowledge base exactly as the app builds them (no agent, no model)."""
    from services.core.openai_client import open_embedding_client
    from services.retrieval.embeddings import create_embedder
    from services.retrieval.knowledge_base import KnowledgeBase

    client = open_embedding_client(settings, timeout_seconds=120, max_retries=3)  # batches of 256 texts
    if client is not None:
        stack.push_async_callback(client.close)
    return KnowledgeBase(database=database, embedder=create_embedder(settings, client), settings=settings)


async def seed(run: Run, settings: Settings, database: Any, stack: AsyncExitStack) -> None:
    from services.content.setup import seed_content
    from services.ingest.kb_sync import seed_knowledge_base
    from services.retrieval.corpus import DEFAULT_KB_DIR

    kb = await open_kb(settings, database, stack)
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


async def ingest_kb(run: Run, args: argparse.Namespace, settings: Settings, database: Any,
                     stack: AsyncExitStack) -> None:
    from services.storage.database import CHUNKS
    from services.ingest.reembed import reembed_all

    kb = await open_kb(settings, database, stack)
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


async def ingest_news(run: Run, args: argparse.Namespace, database: Any) -> None:
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


async def ingest_samples(run: Run, args: argparse.Namespace, database: Any) -> None:
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
