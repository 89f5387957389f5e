"""Knowledge-base retrieval: hybrid (vector + BM25 keyword) search ranked by one relevance score.

On Atlas the vector half is `$vectorSearch` (index `vector_index`, path `embeddings`) and the
keyword half is Atlas Search; on the embedded engine both run in process over the same chunk
documents (`services.retrieval.vector_index` and bm25s), kept in step with every write through this class.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pymongo

from services.retrieval import facets, kb_checks
from services.retrieval.embeddings import EmbedderError
from services.retrieval.kb_checks import REEMBED_COMMAND, KnowledgeBaseModelMismatch  # noqa: F401  (re-exported)
from services.retrieval.ranking import _CSHARP_FENCE, MAX_CHUNKS_PER_DOC, Passage, final_scores, select_diverse
from services.retrieval.vector_index import VectorIndex
from services.storage.database import CHUNKS, KB_DOCUMENTS, KB_META, Database

log = logging.getLogger(__name__)
BULK_LOAD_SECONDS = 600.0
FILTER_FIELDS = facets.FILTER_FIELDS
_PROJECTION = {"title": 1, "content": 1, "source_url": 1, "tags": 1, "section": 1, "doc_id": 1, "chunk_index": 1,
               "ai_libraries": 1, "ai_providers": 1, "dotnet_versions": 1}


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
        self._named_cache: dict[tuple, frozenset[str]] = {}
        self.ready = False

    @property
    def local(self) -> bool:
        return self._db.embedded

    async def stored_model(self) -> dict | None:
        return await self._db[KB_META].find_one({"_id": "embedding_model"})

    async def check_model(self) -> None:
        """Refuse to serve a KB embedded by another model (its vectors would be meaningless) or half re-embedded."""
        await kb_checks.check_model(self._db, self.embedder)

    async def record_model(self) -> None:
        await kb_checks.record_model(self._db, self.embedder)

    async def load(self) -> None:
        """Verify every chunk's vector length (refusing a partial KB), and on the embedded engine load the chunks
        into the in-process indexes (counting there; MongoDB counts on the server)."""
        if self.local:
            with pymongo.timeout(BULK_LOAD_SECONDS):  # one read of every chunk: not a request-sized call
                docs = await self._db[CHUNKS].find({}, {**_PROJECTION, "embeddings": 1}).to_list()
            self.index = VectorIndex(self.embedder.dimensions, hnsw_threshold=self._settings.hnsw_threshold)
            self._chunks.clear()
            bad, total = self._apply_upserts(docs), len(docs)
        else:
            bad = await kb_checks.count_wrong_dimension(self._db, self.embedder.dimensions)
            total = await self._db[CHUNKS].count_documents({}) if bad else 0
        if bad:
            raise kb_checks.vectors_mismatch(bad, total, self.embedder)
        self.ready = True

    def _apply_upserts(self, docs: list[dict]) -> int:
        """Index `docs`; returns how many were skipped for a missing or wrong-length vector."""
        ids, vectors, skipped = [], [], 0
        for doc in docs:
            chunk_id = str(doc["_id"])
            embedding = doc.pop("embeddings", None)
            if not embedding or len(embedding) != self.embedder.dimensions:
                skipped += 1
                continue
            self._chunks[chunk_id] = doc
            ids.append(chunk_id)
            vectors.append(embedding)
        if ids:
            self.index.upsert(ids, np.array(vectors, dtype=np.float32))
        self._bm25_dirty = True
        self._facets = None
        return skipped

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

    async def oldest_verified(self) -> str | None:
        """The oldest `verified` date (ISO) of the stored articles, for /health."""
        docs = await self._db[KB_DOCUMENTS].find({"verified": {"$type": "string"}}, {"verified": 1}).to_list()
        return min((d["verified"] for d in docs), default=None)

    async def article_chunks(self, url: str, *, limit: int) -> list[dict]:
        """The stored chunks whose source is `url` (title, section, content, chunk_index), in article order.

        In memory on the embedded engine; one read of the chunks collection (an article's few chunks) on MongoDB.
        """
        if self.local:
            docs = [doc for doc in list(self._chunks.values()) if doc.get("source_url") == url]
        else:
            fields = {"title": 1, "content": 1, "section": 1, "chunk_index": 1, "source_url": 1}
            docs = await self._db[CHUNKS].find({"source_url": url}, fields).to_list(limit)
        return sorted(docs, key=lambda d: int(d.get("chunk_index") or 0))[:limit]

    @property
    def size(self) -> int:
        return len(self.index) if self.local else -1

    # --- search -------------------------------------------------------------------------------

    async def search(self, query: str, *, filters: dict[str, str] | None = None, k: int = 5,
                     prefer_code: bool = False) -> list[Passage]:
        """Top-k passages for `query`, best first, at most two per article; `prefer_code` favours code.

        Filters are preferences: known facets boost matching passages, nothing is excluded.
        """
        try:
            vector = await self.embedder.embed_query(query)
        except EmbedderError as exc:  # the embeddings endpoint failed or timed out: keywords still answer
            log.warning("query embedding failed, keyword-only retrieval for this search: %s", exc)
            if self.local:
                return await asyncio.to_thread(self._search_keywords_only, query, k, prefer_code)
            return await self._search_atlas_keywords_only(query, k, prefer_code)
        if self.local:
            return await asyncio.to_thread(self._search_local, query, vector, filters or {}, k, prefer_code)
        return await self._search_atlas(query, vector, filters or {}, k, prefer_code)

    def _search_keywords_only(self, query: str, k: int, prefer_code: bool) -> list[Passage]:
        """BM25 alone (the embedder failed); a passage's score is its share of the best BM25 score."""
        return self._keyword_only_passages(self._keyword_scores(query, max(k * 4, 20)), self._chunks, k, prefer_code)

    @classmethod
    def _keyword_only_passages(cls, keyword: dict[str, float], docs: dict[str, dict], k: int,
                               prefer_code: bool) -> list[Passage]:
        """Passages ranked by keyword score alone, each scored as its share of the best one (both engines)."""
        best = max(keyword.values(), default=0.0) or 1.0
        scores = {chunk_id: score / best for chunk_id, score in keyword.items()}
        ranked = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
        picked = select_diverse(ranked, docs, k, prefer_code=prefer_code)
        return [cls._passage(chunk_id, docs[chunk_id], scores[chunk_id]) for chunk_id in picked]

    def known_facets(self) -> dict[str, set[str]]:
        """Every facet value the stored chunks carry, as loose keys (recomputed after writes)."""
        if self._facets is None:
            known: dict[str, set[str]] = {field: set() for field in FILTER_FIELDS.values()}
            for chunk in self._chunks.values():
                for field in known:
                    known[field].update(facets.key(v) for v in chunk.get(field) or ())
            self._facets = known
            self._named_cache = {}
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
        if prefs:  # the passages the user's filters name join the candidates even when they rank lower
            candidates += [chunk_id for chunk_id, _ in self.index.search(vector, k * 2, self._named(prefs).__contains__)]
        cosine = self.index.cosines(list(dict.fromkeys(candidates)), vector)
        scores = final_scores(cosine, keyword, self._chunks, prefs)
        ranked = sorted(scores, key=lambda chunk_id: -scores[chunk_id])
        picked = select_diverse(ranked, self._chunks, k, prefer_code=prefer_code)
        picked = self._with_preferred(picked, ranked, prefs, k)
        if prefer_code and picked:
            picked = self._with_top_example(picked, vector, keyword, prefs, scores, k)
        return [self._passage(chunk_id, self._chunks[chunk_id], scores[chunk_id]) for chunk_id in picked]

    def _named(self, prefs: dict[str, str]) -> frozenset[str]:
        """Chunk ids carrying at least one of the preferred facets exactly (cached until the next write)."""
        cache_key = tuple(sorted(prefs.items()))
        if self._facets is None or cache_key not in self._named_cache:
            self.known_facets()
            self._named_cache[cache_key] = frozenset(
                c for c, chunk in self._chunks.items() if facets.matches(chunk, prefs, strict=True))
        return self._named_cache[cache_key]

    def _with_preferred(self, picked: list[str], ranked: list[str], prefs: dict[str, str], k: int) -> list[str]:
        """When no passage carries the library/provider the user chose, the best one that does takes the last
        place (scores stay in order: it ranks below the others). The floor still applies downstream."""
        named = {field: value for field, value in prefs.items() if field != "dotnet_versions"}
        if not named or not picked:
            return picked
        strict = lambda c: facets.matches(self._chunks.get(c, {}), named, strict=True) > 0  # noqa: E731
        if any(strict(c) for c in picked):
            return picked
        best = next((c for c in ranked if strict(c) and c not in picked), None)
        if best is None:
            return picked
        return [*picked[: k - 1], best]

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

    async def _atlas_keyword_docs(self, query: str, pool: int, *, with_embeddings: bool) -> list[dict]:
        """Atlas Search hits for `query` (best first), [] when the cluster has no Atlas Search index."""
        projection = {**_PROJECTION, "score": {"$meta": "searchScore"}}
        if with_embeddings:
            projection["embeddings"] = 1
        pipeline = [
            {"$search": {"index": self._settings.atlas_search_index_name,
                         "text": {"query": query, "path": ["title", "section", "content"]}}},
            {"$limit": pool},
            {"$project": projection},
        ]
        try:
            cursor = await self._db[CHUNKS].aggregate(pipeline)
            return await cursor.to_list()
        except pymongo.errors.PyMongoError:  # no Atlas Search index: vector results alone still answer
            log.info("Atlas Search keyword query unavailable; using vector results only", exc_info=True)
            return []

    async def _search_atlas_keywords_only(self, query: str, k: int, prefer_code: bool) -> list[Passage]:
        """Atlas Search alone (the embedder failed), scored like `_search_keywords_only`."""
        docs = await self._atlas_keyword_docs(query, max(k * 4, 20), with_embeddings=False)
        by_id = {str(d["_id"]): d for d in docs}
        keyword = {chunk_id: float(doc.get("score", 0.0)) for chunk_id, doc in by_id.items()}
        return self._keyword_only_passages(keyword, by_id, k, prefer_code)

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
        keyword_docs = await self._atlas_keyword_docs(query, pool, with_embeddings=True)
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
