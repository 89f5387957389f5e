"""`python main.py ingest kb --reembed`: re-embed every chunk with the configured model, built aside, then switched.

1. build: each chunk's new vector goes to `embeddings_next` (+ `embedding_model_next`); the served
   `embeddings` and `kb_meta`'s model stay as they were, so the app keeps serving the whole previous
   KB. A failure here (embeddings endpoint down...) leaves nothing to repair; a new run resumes with
   the chunks that still lack a new vector (a chunk rewritten meanwhile lost its side fields, so it
   is embedded again). A job for another model is dropped and started over.
2. switch: once every chunk has a new vector, one `$rename` moves the side fields into place and
   `kb_meta` names the new model. The job is marked `switching` first, so a switch cut short is
   refused at start-up (see `kb_checks`) and finished by running the command again.
Works the same on the embedded engine (litemongo supports `bulk_write` and `$rename`) and on MongoDB.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

import pymongo
from pymongo import UpdateOne

from services.core.errors import StartupError, describe_failure
from services.ingest.kb_sync import embedding_failure, embedding_text
from services.retrieval.kb_checks import BULK_SECONDS, REEMBED_COMMAND, REEMBED_ID
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import CHUNKS, KB_META, Database

log = logging.getLogger(__name__)
NEXT, NEXT_MODEL = "embeddings_next", "embedding_model_next"
MAX_PASSES = 3  # chunks rewritten during a pass (MongoDB: a running app's sync) are picked up by the next


class ReembedInterrupted(StartupError):
    """Re-embedding stopped part-way; the served vectors are untouched and running the command again resumes."""


async def reembed_all(*, database: Database, kb: KnowledgeBase, batch: int = 32,
                      progress: Callable[[int], None] | None = None) -> int:
    """Re-embed every stored chunk with `kb.embedder`, switch to the new vectors, record the model; returns the count."""
    model = kb.embedder.model_id
    chunks = database[CHUNKS]
    job = await _start_job(database, model, kb.embedder.dimensions)
    total = await chunks.count_documents({})
    if job.get("state") == "building":
        await _build(database, kb, batch=batch, total=total, progress=progress)
        await database[KB_META].update_one({"_id": REEMBED_ID}, {"$set": {"state": "switching"}})
    elif progress:
        progress(total)
    with pymongo.timeout(BULK_SECONDS):
        await chunks.update_many({NEXT_MODEL: model}, {"$rename": {NEXT: "embeddings", NEXT_MODEL: "embedding_model"}})
    await kb.record_model()
    await database[KB_META].delete_one({"_id": REEMBED_ID})
    if kb.ready:  # an app's in-process index follows the switch (the CLI never loaded one)
        await kb.load()
    log.info("re-embedded %d chunks with %r", total, model)
    return total


async def _start_job(database: Database, model: str, dimensions: int) -> dict:
    """The job to run: the interrupted one for this model, else a new one (another model's side vectors dropped)."""
    job = await database[KB_META].find_one({"_id": REEMBED_ID})
    if job and job.get("model_id") == model:
        log.info("resuming the interrupted re-embed to %r (%s)", model, job.get("state"))
        return job
    if job:
        log.info("dropping an interrupted re-embed to %r: the configured model is %r", job.get("model_id"), model)
    with pymongo.timeout(BULK_SECONDS):
        await database[CHUNKS].update_many({NEXT_MODEL: {"$exists": True}}, {"$unset": {NEXT: "", NEXT_MODEL: ""}})
    job = {"model_id": model, "dimensions": dimensions, "state": "building", "started_at": dt.datetime.now(dt.timezone.utc)}
    await database[KB_META].replace_one({"_id": REEMBED_ID}, job, upsert=True)
    return job


async def _build(database: Database, kb: KnowledgeBase, *, batch: int, total: int,
                 progress: Callable[[int], None] | None) -> None:
    """Write a new vector beside every chunk that lacks one from the configured model."""
    model, dims, chunks = kb.embedder.model_id, kb.embedder.dimensions, database[CHUNKS]
    missing = {NEXT_MODEL: {"$ne": model}}
    done = total - await chunks.count_documents(missing)
    if progress and done:
        progress(done)
    for _ in range(MAX_PASSES):
        with pymongo.timeout(BULK_SECONDS):  # the texts only, read once: a query per batch would rescan every chunk
            todo = await chunks.find(missing, {"title": 1, "section": 1, "content": 1}).sort("_id", 1).to_list()
        if not todo:
            return
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            texts = [embedding_text(d.get("title", ""), d.get("section", ""), d.get("content", "")) for d in part]
            try:
                vectors = await kb.embedder.embed_documents(texts)
                if len(vectors) != len(part) or any(len(v) != dims for v in vectors):
                    raise ValueError(f"it returned vectors of another shape than {len(part)} x {dims}")
            except Exception as exc:
                raise _interrupted(model, done, total, embedding_failure(exc, purpose="to re-embed the knowledge base")) from exc
            try:
                await chunks.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": {NEXT: v.tolist(), NEXT_MODEL: model}})
                                         for d, v in zip(part, vectors)], ordered=False)
            except Exception as exc:  # the store failed: the served vectors are untouched all the same
                raise _interrupted(model, done, total, f"the database failed: {describe_failure(exc)}") from exc
            done += len(part)
            if progress:
                progress(len(part))
    left = await chunks.count_documents(missing)
    if left:
        raise ReembedInterrupted(f"{left} chunks kept changing while they were re-embedded; the knowledge base still "
                                 f"serves its previous vectors. Run `{REEMBED_COMMAND}` again when nothing else writes it.")


def _interrupted(model: str, done: int, total: int, reason: str) -> ReembedInterrupted:
    return ReembedInterrupted(f"re-embedding with '{model}' stopped after {done} of {total} chunks: {reason}. The "
                              f"knowledge base still serves its previous vectors; run `{REEMBED_COMMAND}` again to resume.")
