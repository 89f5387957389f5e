"""Writes articles into `document_chunks`: only changed documents are re-embedded, deleted ones pruned."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable

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
        vectors = await kb.embedder.embed_documents([embedding_text(article.title, c["section"], c["content"]) for c in chunks])
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


async def reembed_all(*, database: Database, kb: KnowledgeBase, batch: int = 32,
                      progress: Callable[[int], None] | None = None) -> int:
    """Re-embed every stored chunk with the configured embedder and record it as the KB's model."""
    docs = await database[CHUNKS].find({}, {"embeddings": 0}).to_list()
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        texts = [embedding_text(d.get("title", ""), d.get("section", ""), d.get("content", "")) for d in part]
        vectors = await kb.embedder.embed_documents(texts)
        for doc, vector in zip(part, vectors):
            doc["embeddings"] = vector.tolist()
            doc["embedding_model"] = kb.embedder.model_id
            await database[CHUNKS].update_one({"_id": doc["_id"]}, {"$set": {"embeddings": doc["embeddings"],
                                                                            "embedding_model": kb.embedder.model_id}})
        kb.on_chunks_written(part)
        if progress:
            progress(len(part))
    await kb.record_model()
    return len(docs)


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
