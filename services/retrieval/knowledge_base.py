"""Knowledge-base retrieval: hybrid (vector + BM25 keyword) search fused by reciprocal rank.

On Atlas the vector half is `$vectorSearch` (index `vector_index`, path `embeddings`) and the
keyword half is Atlas Search; on the embedded engine both run in process over the same chunk
documents (`services.retrieval.vector_index` and bm25s), kept in step with every write through this class.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pymongo

from services.core.errors import StartupError
from services.retrieval import facets
from services.retrieval.vector_index import VectorIndex
from services.storage.database import CHUNKS, KB_META, Database

log = logging.getLogger(__name__)
RRF_K = 60
MAX_CHUNKS_PER_DOC = 2
# Final relevance = cosine + KEYWORD_WEIGHT * (BM25 / best BM25 of the query) + FACET_BOOST * (share of
# the user's known filter facets the passage carries), clamped to 0-1. Chosen by measurement
# (`python -m evals.retrieval`, README "Retrieval"): a convex score ranks better than RRF here
# and gives every passage one comparable number, so `score` follows the list order.
KEYWORD_WEIGHT = 0.15
FACET_BOOST = 0.03
_CSHARP_FENCE = re.compile(r"^(```|~~~)\s*(csharp|cs|c#)\b", re.M | re.I)
REEMBED_COMMAND = "python main.py ingest kb --reembed"
BULK_LOAD_SECONDS = 600.0
FILTER_FIELDS = facets.FILTER_FIELDS
_PROJECTION = {"title": 1, "content": 1, "source_url": 1, "tags": 1, "section": 1, "doc_id": 1,
               "ai_libraries": 1, "ai_providers": 1, "dotnet_versions": 1}


class KnowledgeBaseModelMismatch(StartupError):
    """The stored chunks were embedded by another model than the configured one."""


@dataclass
class Passage:
    chunk_id: str
    title: str
    url: str
    content: str
    score: float
    section: str = ""
    tags: list[str] = field(default_factory=list)

    def as_source(self) -> dict:
        return {"title": self.title, "url": self.url, "score": round(self.score, 4)}


def final_scores(cosine: dict[str, float], keyword: dict[str, float], chunks: dict[str, dict],
                 prefs: dict[str, str]) -> dict[str, float]:
    """The one relevance (0-1) passages are ranked by and reported with."""
    best = max(keyword.values(), default=0.0) or 1.0
    out = {}
    for chunk_id, cos in cosine.items():
        score = cos + KEYWORD_WEIGHT * keyword.get(chunk_id, 0.0) / best
        if prefs:
            score += FACET_BOOST * facets.matches(chunks.get(chunk_id, {}), prefs) / len(prefs)
        out[chunk_id] = min(1.0, max(0.0, score))
    return out


def select_diverse(fused: list[str], chunks: dict[str, dict], k: int, *, prefer_code: bool = False) -> list[str]:
    """Take fused ids in order, at most MAX_CHUNKS_PER_DOC per document so other articles get room.

    With `prefer_code`, a document's extra slot is kept for one of its chunks with a C# block
    when the candidates hold one (a "how do I" question wants the example, not more prose).
    """
    def doc_of(chunk_id: str) -> str:
        return chunks[chunk_id].get("doc_id") or chunks[chunk_id].get("source_url") or chunk_id

    def has_code(chunk_id: str) -> bool:
        return bool(_CSHARP_FENCE.search(chunks[chunk_id].get("content") or ""))

    code_docs = {doc_of(i) for i in fused if has_code(i)} if prefer_code else set()
    picked: list[str] = []
    per_doc: dict[str, int] = {}
    for chunk_id in fused:
        if len(picked) >= k:
            break
        doc = doc_of(chunk_id)
        count = per_doc.get(doc, 0)
        if count >= MAX_CHUNKS_PER_DOC:
            continue
        if count and doc in code_docs and not has_code(chunk_id):
            continue
        if has_code(chunk_id):
            code_docs.discard(doc)
        per_doc[doc] = count + 1
        picked.append(chunk_id)
    return picked


def rrf_fuse(*rankings: list[str], k: int = RRF_K) -> list[str]:
    """Reciprocal-rank fusion of several ranked id lists."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(scores, key=lambda item: -scores[item])


class KnowledgeBase:
    """Search and index maintenance over `document_chunks`."""

    def __init__(self, *, database: Database, embedder, settings) -> None:
        self._db = database
        self.embedder = embedder
        self._settings = settings
        self.index = VectorIndex(embedder.dimensions, hnsw_threshold=settings.hnsw_threshold)
        self._chunks: dict[str, dict] = {}
        self._bm25 = None
        self._bm25_ids: list[str] = []
        self._bm25_dirty = True
        self._facets: dict[str, set[str]] | None = None
        self.ready = False

    @property
    def local(self) -> bool:
        return self._db.embedded

    async def stored_model(self) -> dict | None:
        return await self._db[KB_META].find_one({"_id": "embedding_model"})

    async def check_model(self) -> None:
        """Refuse to serve a KB embedded by another model: its vectors would be meaningless."""
        meta = await self.stored_model()
        if meta is None:
            sample = await self._db[CHUNKS].find_one({"embeddings": {"$exists": True}}, {"embeddings": 1})
            if sample is None:
                return
            dims = len(sample.get("embeddings") or [])
            if dims != self.embedder.dimensions:
                raise KnowledgeBaseModelMismatch(
                    f"The knowledge base holds {dims}-dimension embeddings but the configured embedder "
                    f"'{self.embedder.model_id}' makes {self.embedder.dimensions}. Re-embed it with `{REEMBED_COMMAND}`."
                )
            return
        if meta.get("model_id") != self.embedder.model_id:
            raise KnowledgeBaseModelMismatch(
                f"The knowledge base was embedded with '{meta.get('model_id')}' but the configured embedder is "
                f"'{self.embedder.model_id}'. Re-embed it with `{REEMBED_COMMAND}` (or restore the settings it was built with)."
            )

    async def record_model(self) -> None:
        await self._db[KB_META].update_one(
            {"_id": "embedding_model"},
            {"$set": {"model_id": self.embedder.model_id, "dimensions": self.embedder.dimensions}},
            upsert=True,
        )

    async def load(self) -> None:
        """Embedded engine: load every chunk into the in-process indexes."""
        if self.local:
            with pymongo.timeout(BULK_LOAD_SECONDS):  # one read of every chunk: not a request-sized call
                docs = await self._db[CHUNKS].find({}, {**_PROJECTION, "embeddings": 1}).to_list()
            self.index = VectorIndex(self.embedder.dimensions, hnsw_threshold=self._settings.hnsw_threshold)
            self._chunks.clear()
            self._apply_upserts(docs)
        self.ready = True

    def _apply_upserts(self, docs: list[dict]) -> None:
        ids, vectors = [], []
        for doc in docs:
            chunk_id = str(doc["_id"])
            embedding = doc.pop("embeddings", None)
            if not embedding or len(embedding) != self.embedder.dimensions:
                continue
            self._chunks[chunk_id] = doc
            ids.append(chunk_id)
            vectors.append(embedding)
        if ids:
            self.index.upsert(ids, np.array(vectors, dtype=np.float32))
        self._bm25_dirty = True
        self._facets = None

    def on_chunks_written(self, docs: list[dict]) -> None:
        """Keep the in-process indexes in step after chunk documents were inserted or replaced."""
        if self.local:
            self._apply_upserts([dict(d) for d in docs])

    def on_chunks_removed(self, chunk_ids: list[str]) -> None:
        if self.local:
            self.index.remove(chunk_ids)
            for chunk_id in chunk_ids:
                self._chunks.pop(chunk_id, None)
            self._bm25_dirty = True
            self._facets = None

    @property
    def size(self) -> int:
        return len(self.index) if self.local else -1

    # --- search -------------------------------------------------------------------------------

    async def search(self, query: str, *, filters: dict[str, str] | None = None, k: int = 5,
                     prefer_code: bool = False) -> list[Passage]:
        """Top-k passages for `query`, best first, at most two per article; `prefer_code` favours code.

        Filters are preferences: known facets boost matching passages, nothing is excluded.
        """
        vector = await self.embedder.embed_query(query)
        if self.local:
            return await asyncio.to_thread(self._search_local, query, vector, filters or {}, k, prefer_code)
        return await self._search_atlas(query, vector, filters or {}, k, prefer_code)

    def known_facets(self) -> dict[str, set[str]]:
        """Every facet value the stored chunks carry, as loose keys (recomputed after writes)."""
        if self._facets is None:
            known: dict[str, set[str]] = {field: set() for field in FILTER_FIELDS.values()}
            for chunk in self._chunks.values():
                for field in known:
                    known[field].update(facets.key(v) for v in chunk.get(field) or ())
            self._facets = known
        return self._facets

    def _keyword_scores(self, query: str, limit: int) -> dict[str, float]:
        import bm25s

        if self._bm25_dirty:
            self._bm25_ids = list(self._chunks)
            corpus = [f"{c.get('title', '')}\n{c.get('section', '')}\n{c.get('content', '')}" for c in self._chunks.values()]
            retriever = bm25s.BM25()
            if corpus:
                retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
            self._bm25, self._bm25_dirty = (retriever if corpus else None), False
        if self._bm25 is None:
            return {}
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return {}
        k = min(limit, len(self._bm25_ids))
        results, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return {self._bm25_ids[int(r)]: float(s) for r, s in zip(results[0], scores[0]) if s > 0}

    def _search_local(self, query: str, vector: np.ndarray, filters: dict, k: int, prefer_code: bool) -> list[Passage]:
        prefs = facets.preferences(filters, self.known_facets())
        pool = max(k * 4, 20)
        keyword = self._keyword_scores(query, pool)
        candidates = [chunk_id for chunk_id, _ in self.index.search(vector, pool)] + list(keyword)
        cosine = self.index.cosines(list(dict.fromkeys(candidates)), vector)
        scores = final_scores(cosine, keyword, self._chunks, prefs)
        ranked = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
        picked = select_diverse(ranked, self._chunks, k, prefer_code=prefer_code)
        if prefer_code and picked:
            picked = self._with_top_example(picked, vector, keyword, prefs, scores, k)
        return [self._passage(chunk_id, self._chunks[chunk_id], scores[chunk_id]) for chunk_id in picked]

    def _with_top_example(self, picked: list[str], vector: np.ndarray, keyword: dict[str, float],
                          prefs: dict[str, str], scores: dict[str, float], k: int) -> list[str]:
        """A "how do I" question wants the best article's C# example even when that section ranked lower."""
        doc = self._chunks[picked[0]].get("doc_id")
        mine = [c for c in picked if self._chunks[c].get("doc_id") == doc]
        if not doc or any(_CSHARP_FENCE.search(self._chunks[c].get("content") or "") for c in mine):
            return picked
        examples = [c for c, chunk in self._chunks.items()
                    if chunk.get("doc_id") == doc and _CSHARP_FENCE.search(chunk.get("content") or "")]
        if not examples:
            return picked
        cosine = self.index.cosines(examples, vector)
        extra = final_scores(cosine, keyword, self._chunks, prefs)
        best = max(extra, key=extra.get)
        scores[best] = extra[best]
        if len(mine) >= MAX_CHUNKS_PER_DOC:  # keep two per article: the example replaces its weaker section
            picked = [c for c in picked if c != mine[-1]]
        merged = sorted([*picked, best], key=lambda c: -scores[c])
        return merged[:k]

    @staticmethod
    def _passage(chunk_id: str, chunk: dict, score: float) -> Passage:
        return Passage(
            chunk_id=chunk_id,
            title=chunk.get("title") or "Untitled",
            url=chunk.get("source_url") or "",
            content=chunk.get("content") or "",
            score=float(score),
            section=chunk.get("section") or "",
            tags=list(chunk.get("tags") or []),
        )

    async def _search_atlas(self, query: str, vector: np.ndarray, filters: dict, k: int, prefer_code: bool) -> list[Passage]:
        """Atlas: `$vectorSearch` + Atlas Search, unfiltered (a filter could exclude everything), then
        the same final score and facet boost as the embedded engine, applied after retrieval."""
        chunks = self._db[CHUNKS]
        pool = max(k * 4, 20)
        stage = {"index": self._settings.vector_index_name, "path": "embeddings",
                 "queryVector": vector.tolist(), "numCandidates": pool * 10, "limit": pool}
        vector_pipeline = [{"$vectorSearch": stage},
                           {"$project": {**_PROJECTION, "score": {"$meta": "vectorSearchScore"}}}]
        cursor = await chunks.aggregate(vector_pipeline)
        vector_docs = await cursor.to_list()
        keyword_docs: list[dict] = []
        try:
            keyword_pipeline = [
                {"$search": {"index": self._settings.atlas_search_index_name,
                             "text": {"query": query, "path": ["title", "section", "content"]}}},
                {"$limit": pool},
                {"$project": {**_PROJECTION, "embeddings": 1, "score": {"$meta": "searchScore"}}},
            ]
            cursor = await chunks.aggregate(keyword_pipeline)
            keyword_docs = await cursor.to_list()
        except Exception:  # no Atlas Search index: vector results alone still answer
            log.info("Atlas Search keyword query unavailable; using vector results only", exc_info=True)
        by_id = {str(d["_id"]): d for d in [*keyword_docs, *vector_docs]}
        # vectorSearchScore for cosine is (1 + cos) / 2; use the cosine like the local index
        cosine = {str(d["_id"]): 2.0 * float(d.get("score", 0.5)) - 1.0 for d in vector_docs}
        query_vector = np.asarray(vector, dtype=np.float32)
        for doc in keyword_docs:  # keyword-only hits: their cosine from the stored vector
            chunk_id = str(doc["_id"])
            if chunk_id not in cosine and doc.get("embeddings"):
                stored = np.asarray(doc["embeddings"], dtype=np.float32)
                cosine[chunk_id] = float(stored @ query_vector / (np.linalg.norm(stored) or 1.0))
        keyword = {str(d["_id"]): float(d.get("score", 0.0)) for d in keyword_docs}
        known = {field: {facets.key(v) for d in by_id.values() for v in d.get(field) or ()}
                 for field in FILTER_FIELDS.values()}
        scores = final_scores(cosine, keyword, by_id, facets.preferences(filters, known))
        ranked = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
        return [self._passage(i, by_id[i], scores[i]) for i in select_diverse(ranked, by_id, k, prefer_code=prefer_code)]
