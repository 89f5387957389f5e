"""Retrieval on the Atlas path (`MONGODB_URI`): `$vectorSearch` + Atlas Search, and keyword-only when the
query embedding fails.

Atlas is not reachable here, so `AtlasStandIn` answers the two Atlas-only aggregation stages the way
Atlas documents them (`$vectorSearch`: cosine as `(1 + cos) / 2` in `vectorSearchScore`, at most `limit`;
`$search` text: documents matching any query term, best `searchScore` first; an unknown index is an
OperationFailure) over the real seeded chunks in the embedded engine; every other call goes through.
"""

from __future__ import annotations

import re

import numpy as np
import pymongo.errors
import pytest

from services.retrieval.embeddings import EmbedderError
from services.retrieval.knowledge_base import KnowledgeBase
from services.storage.database import CHUNKS, Database, open_database

QUESTION = "How do I generate embeddings with IEmbeddingGenerator?"


class _Cursor:
    def __init__(self, docs: list[dict]) -> None:
        self._docs = docs

    async def to_list(self, length: int | None = None) -> list[dict]:
        return self._docs


def _project(doc: dict, projection: dict, meta: float) -> dict:
    out = {"_id": doc["_id"]}
    for field, spec in projection.items():
        if isinstance(spec, dict) and "$meta" in spec:
            out[field] = meta
        elif spec and field in doc:
            out[field] = doc[field]
    return out


class AtlasCollection:
    def __init__(self, inner, *, search_index: str | None) -> None:
        self._inner, self._search_index = inner, search_index
        self.pipelines: list[list[dict]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def aggregate(self, pipeline: list[dict]):
        self.pipelines.append(pipeline)
        first = pipeline[0]
        docs = await self._inner.find({}).to_list()
        if "$vectorSearch" in first:
            stage = first["$vectorSearch"]
            query = np.asarray(stage["queryVector"], dtype=np.float32)
            scored = []
            for doc in docs:
                vector = np.asarray(doc["embeddings"], dtype=np.float32)
                cos = float(vector @ query / (np.linalg.norm(vector) * np.linalg.norm(query)))
                scored.append(((1.0 + cos) / 2.0, doc))
            scored.sort(key=lambda pair: -pair[0])
            scored = scored[:stage["limit"]]
        elif "$search" in first:
            stage = first["$search"]
            if stage["index"] != self._search_index:
                raise pymongo.errors.OperationFailure(f"no search index named {stage['index']}")
            terms = set(re.findall(r"\w+", stage["text"]["query"].lower()))
            scored = []
            for doc in docs:
                words = re.findall(r"\w+", " ".join(str(doc.get(f) or "") for f in stage["text"]["path"]).lower())
                score = sum(words.count(term) for term in terms) / (1.0 + len(words) ** 0.5)
                if score > 0:
                    scored.append((score, doc))
            scored.sort(key=lambda pair: -pair[0])
        else:
            return await self._inner.aggregate(pipeline)
        for stage in pipeline[1:]:
            if "$limit" in stage:
                scored = scored[:stage["$limit"]]
            elif "$project" in stage:
                scored = [(score, _project(doc, stage["$project"], score)) for score, doc in scored]
        return _Cursor([doc for _, doc in scored])


class AtlasStandIn:
    def __init__(self, db, *, search_index: str | None) -> None:
        self._db = db
        self.chunks = AtlasCollection(db[CHUNKS], search_index=search_index)

    def __getitem__(self, name: str):
        return self.chunks if name == CHUNKS else self._db[name]


class FailingEmbedder:
    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions

    async def embed_query(self, text: str) -> np.ndarray:
        raise EmbedderError("embeddings endpoint answered 500")


@pytest.fixture
async def atlas(seeded_settings):
    """(settings, the embedded database, an Atlas stand-in over it with a search index, one without)."""
    database = await open_database(seeded_settings)
    try:
        yield seeded_settings, database
    finally:
        await database.close()


def _atlas_kb(settings, database: Database, embedder, *, search_index: str | None) -> tuple[KnowledgeBase, AtlasStandIn]:
    standin = AtlasStandIn(database.db, search_index=search_index)
    return KnowledgeBase(database=Database(client=database.client, db=standin, embedded=False), embedder=embedder,
                         settings=settings), standin


async def test_atlas_hybrid_search_ranks_like_the_embedded_engine(atlas, local_embedder):
    settings, database = atlas
    local = KnowledgeBase(database=database, embedder=local_embedder, settings=settings)
    await local.load()
    remote, standin = _atlas_kb(settings, database, local_embedder, search_index=settings.atlas_search_index_name)

    hits = await remote.search(QUESTION, k=5)
    local_hits = await local.search(QUESTION, k=5)
    assert [p.url for p in hits][:1] == [p.url for p in local_hits][:1]
    assert "IEmbeddingGenerator" in hits[0].content and hits[0].score > 0.4
    assert [p.score for p in hits] == sorted((p.score for p in hits), reverse=True)
    assert [next(iter(p[0])) for p in standin.chunks.pipelines] == ["$vectorSearch", "$search"]


async def test_a_failed_query_embedding_on_atlas_falls_back_to_atlas_search(atlas, local_embedder):
    settings, database = atlas
    kb, standin = _atlas_kb(settings, database, FailingEmbedder(local_embedder.dimensions),
                            search_index=settings.atlas_search_index_name)

    hits = await kb.search(QUESTION, k=5)
    assert hits and hits[0].score == 1.0 and all(0 < p.score <= 1 for p in hits)
    assert any("IEmbeddingGenerator" in p.content for p in hits)
    assert [next(iter(p[0])) for p in standin.chunks.pipelines] == ["$search"]  # keywords alone, no vector stage
    assert len({p.url for p in hits}) >= 3  # at most two passages an article, as always


async def test_without_an_atlas_search_index_vectors_alone_answer_and_keywords_alone_find_nothing(atlas, local_embedder):
    settings, database = atlas
    kb, _ = _atlas_kb(settings, database, local_embedder, search_index=None)
    hits = await kb.search(QUESTION, k=5)
    assert hits and "IEmbeddingGenerator" in " ".join(p.content for p in hits)

    failing, _ = _atlas_kb(settings, database, FailingEmbedder(local_embedder.dimensions), search_index=None)
    assert await failing.search(QUESTION, k=5) == []  # nothing to search with: the answer says "I don't know"
