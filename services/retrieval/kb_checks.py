"""Start-up checks of the stored knowledge base: the recorded embedding model, every chunk's vector length,
and an interrupted re-embed. Each failure is one `StartupError` line that names the repair command.

`kb_meta` holds `{_id: "embedding_model", model_id, dimensions}` for the vectors in `embeddings`, and,
while `python main.py ingest kb --reembed` runs, `{_id: "reembed", model_id, dimensions, state}`:
`building` (new vectors go to side fields; the served ones are untouched) or `switching` (the side
fields are being moved into place; chunks may be mixed until the command finishes).
"""

from __future__ import annotations

import logging

import pymongo

from services.core.errors import StartupError
from services.storage.database import CHUNKS, KB_META, Database

log = logging.getLogger(__name__)
REEMBED_COMMAND = "python main.py ingest kb --reembed"
MODEL_ID, REEMBED_ID = "embedding_model", "reembed"
BULK_SECONDS = 600.0  # one pass over every chunk: not a request-sized call


class KnowledgeBaseModelMismatch(StartupError):
    """The stored chunks were embedded by another model than the configured one."""


class KnowledgeBaseVectorsMismatch(KnowledgeBaseModelMismatch):
    """Some chunks' vectors are missing or have another length than the recorded model's (a partial KB)."""


async def check_model(database: Database, embedder) -> None:
    """Refuse to serve a KB embedded by another model, or one left half-switched by a re-embed."""
    job = await database[KB_META].find_one({"_id": REEMBED_ID})
    if job and job.get("state") == "switching":
        raise KnowledgeBaseModelMismatch(
            f"A re-embed to '{job.get('model_id')}' stopped while switching the knowledge base's vectors, so its "
            f"chunks are mixed. Finish it with `{REEMBED_COMMAND}`.")
    meta = await database[KB_META].find_one({"_id": MODEL_ID})
    if meta is None:
        sample = await database[CHUNKS].find_one({"embeddings": {"$exists": True}}, {"embeddings": 1})
        if sample is None:
            return
        dims = len(sample.get("embeddings") or [])
        if dims != embedder.dimensions:
            raise KnowledgeBaseModelMismatch(
                f"The knowledge base holds {dims}-dimension embeddings but the configured embedder "
                f"'{embedder.model_id}' makes {embedder.dimensions}. Re-embed it with `{REEMBED_COMMAND}`.")
    elif meta.get("model_id") != embedder.model_id:
        raise KnowledgeBaseModelMismatch(
            f"The knowledge base was embedded with '{meta.get('model_id')}' but the configured embedder is "
            f"'{embedder.model_id}'. Re-embed it with `{REEMBED_COMMAND}` (or restore the settings it was built with).")
    if job:  # building: the served vectors are intact; say that a resumable job waits
        log.warning("a re-embed to %r was interrupted; the knowledge base still serves %r. Run `%s` to finish it.",
                    job.get("model_id"), meta.get("model_id") if meta else embedder.model_id, REEMBED_COMMAND)


async def record_model(database: Database, embedder) -> None:
    await database[KB_META].update_one(
        {"_id": MODEL_ID}, {"$set": {"model_id": embedder.model_id, "dimensions": embedder.dimensions}}, upsert=True)


async def count_wrong_dimension(database: Database, dimensions: int) -> int:
    """Chunks whose `embeddings` is missing or not `dimensions` long (MongoDB: counted on the server)."""
    with pymongo.timeout(BULK_SECONDS):
        return await database[CHUNKS].count_documents({"embeddings": {"$not": {"$size": dimensions}}})


def vectors_mismatch(bad: int, total: int, embedder) -> KnowledgeBaseVectorsMismatch:
    return KnowledgeBaseVectorsMismatch(
        f"{bad} of {total} knowledge-base chunks have no {embedder.dimensions}-dimension vector from "
        f"'{embedder.model_id}' (the model kb_meta records), e.g. after an interrupted re-embed; serving would "
        f"silently skip them. Repair it with `{REEMBED_COMMAND}`.")
