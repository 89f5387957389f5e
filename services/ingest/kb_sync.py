"""Writes articles into `document_chunks`: only changed documents are re-embedded, deleted ones pruned."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable

from services.core.errors import StartupError, describe_failure
from services.retrieval.corpus import Article, chunk_markdown
from services.storage.database import CHUNKS, KB_DOCUMENTS, Database
from services.retrieval.knowledge_base import KnowledgeBase
from services.ingest.tagger import tag_text

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_written: int = 0
    problems: list[str] = field(default_factory=list)


class EmbeddingsUnavailable(StartupError):
    """The embedder failed while the knowledge base was being built (e.g. its endpoint cannot be reached)."""


def embedding_failure(exc: BaseException, *, purpose: str = "to build the knowledge base") -> str:
    """One line for an embedder failure that says which endpoint failed and what to do."""
    import openai

    cause: BaseException | None = exc  # the embedder may wrap the client's error (EmbedderError from ...)
    for _ in range(5):
        if cause is None or isinstance(cause, (openai.APIError, ConnectionError, TimeoutError)):
            break
        cause = cause.__cause__
    if cause is None or not isinstance(cause, (openai.APIError, ConnectionError, TimeoutError)):
        return f"the embedder failed {purpose}: {describe_failure(exc)}"
    request = getattr(cause, "request", None)
    url = str(request.url) if request is not None else "(unknown URL)"
    setting = "OPENAI_API_KEY" if "//api.openai.com/" in url else "EMBEDDING_BASE_URL"
    if isinstance(cause, openai.APIStatusError):
        return (f"the embeddings endpoint {url} refused the request {purpose}: {describe_failure(cause)}; "
                f"check {setting} and EMBEDDING_MODEL, or unset {setting} to use the local model")
    return (f"cannot reach the embeddings endpoint {url} {purpose}: {describe_failure(cause)}; "
            f"check the network or unset {setting} to use the local model")


async def embed_texts(kb: KnowledgeBase, texts: list[str]):
    """`kb.embedder.embed_documents`, with a failure turned into one `EmbeddingsUnavailable` line."""
    try:
        return await kb.embedder.embed_documents(texts)
    except Exception as exc:
        raise EmbeddingsUnavailable(embedding_failure(exc)) from exc


def embedding_text(title: str, section: str, content: str) -> str:
    """What is embedded for a chunk: the title and section give it the context a question has."""
    heading = f"{title} — {section}" if section else title
    return f"{heading}\n{content}"


async def sync_articles(
    *,
    database: Database,
    kb: KnowledgeBase,
    articles: list[Article],
    origin: str,
    prune: bool = True,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Upsert `articles` (tagged with `origin`); with `prune`, drop this origin's other documents."""
    report = IngestReport()
    known = {d["doc_id"]: d for d in await database[KB_DOCUMENTS].find({"origin": origin}).to_list()}
    for article in articles:
        if not article.ai_libraries:  # e.g. HTML pages and URLs: tag them like the eval suite judges
            article.ai_libraries = tag_text(f"{article.title}\n{article.body}")
        previous = known.get(article.doc_id)
        if previous and previous.get("content_hash") == article.content_hash and not force:
            report.unchanged += 1
            if progress:
                progress(1)
            continue
        chunks = chunk_markdown(article.body)
        vectors = await embed_texts(kb, [embedding_text(article.title, c["section"], c["content"]) for c in chunks])
        now = dt.datetime.now(dt.timezone.utc)
        docs = [
            {
                "_id": f"{article.doc_id}#{index}",
                "doc_id": article.doc_id,
                "chunk_index": index,
                "title": article.title,
                "section": chunk["section"],
                "content": chunk["content"],
                "source_url": article.source_url,
                "tags": article.tags,
                "ai_libraries": article.ai_libraries,
                "ai_providers": article.ai_providers,
                "dotnet_versions": article.dotnet_versions,
                "embeddings": vector.tolist(),
                "embedding_model": kb.embedder.model_id,
                "content_hash": article.content_hash,
                "updated_at": now,
            }
            for index, (chunk, vector) in enumerate(zip(chunks, vectors))
        ]
        stale = await _chunk_ids(database, article.doc_id)
        for doc in docs:
            await database[CHUNKS].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        kb.on_chunks_written(docs)
        leftover = sorted(stale - {d["_id"] for d in docs})
        if leftover:
            await database[CHUNKS].delete_many({"_id": {"$in": leftover}})
            kb.on_chunks_removed(leftover)
        await database[KB_DOCUMENTS].update_one(
            {"doc_id": article.doc_id},
            {"$set": {"doc_id": article.doc_id, "origin": origin, "title": article.title,
                      "source_url": article.source_url, "content_hash": article.content_hash,
                      "verified": article.verified.isoformat() if article.verified else None,
                      "chunks": len(docs), "updated_at": now}},
            upsert=True,
        )
        report.chunks_written += len(docs)
        if previous:
            report.updated += 1
        else:
            report.added += 1
        if progress:
            progress(1)
    if prune:
        current = {a.doc_id for a in articles}
        for doc_id in sorted(set(known) - current):
            await remove_document(database=database, kb=kb, doc_id=doc_id)
            report.removed += 1
    await kb.record_model()
    return report


async def _chunk_ids(database: Database, doc_id: str) -> set[str]:
    docs = await database[CHUNKS].find({"doc_id": doc_id}, {"_id": 1}).to_list()
    return {str(d["_id"]) for d in docs}


async def remove_document(*, database: Database, kb: KnowledgeBase, doc_id: str) -> None:
    ids = sorted(await _chunk_ids(database, doc_id))
    await database[CHUNKS].delete_many({"doc_id": doc_id})
    await database[KB_DOCUMENTS].delete_one({"doc_id": doc_id})
    kb.on_chunks_removed(ids)


async def seed_knowledge_base(*, database: Database, kb: KnowledgeBase,
                              progress: Callable[[int], None] | None = None,
                              on_problem: Callable[[str], None] | None = None) -> IngestReport:
    """Load the shipped articles (only changed ones are re-embedded); used by the lifespan and `seed`."""
    from services.retrieval.corpus import load_articles

    articles, problems = load_articles()
    for problem in problems:
        (on_problem or (lambda text: log.warning("skipped article: %s", text)))(problem)
    report = await sync_articles(database=database, kb=kb, articles=articles, origin="seed", progress=progress)
    log.info("knowledge base seed: %d added, %d updated, %d unchanged, %d removed (%d chunks written)",
             report.added, report.updated, report.unchanged, report.removed, report.chunks_written)
    return report
