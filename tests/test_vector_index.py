"""The in-process vector index: exact and HNSW agree, filters pre-filter, updates apply."""

from __future__ import annotations

import numpy as np

from services.retrieval import facets
from services.retrieval.ranking import FACET_BOOST, final_scores, select_diverse
from services.retrieval.vector_index import VectorIndex


def _unit(rng, n, d=32):
    centers = rng.normal(size=(8, d))
    v = centers[rng.integers(0, 8, n)] + 0.3 * rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_exact_search_orders_by_cosine_and_filters():
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 200)
    index = VectorIndex(32, hnsw_threshold=10_000)
    index.upsert([f"id{i}" for i in range(200)], vectors)
    hits = index.search(vectors[7], 5)
    assert hits[0][0] == "id7" and abs(hits[0][1] - 1.0) < 1e-5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    even = index.search(vectors[7], 5, allow=lambda i: int(i[2:]) % 2 == 0)
    assert all(int(i[2:]) % 2 == 0 for i, _ in even)


def test_hnsw_matches_exact_recall_and_follows_updates():
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 3000)
    ids = [f"id{i}" for i in range(3000)]
    exact = VectorIndex(32, hnsw_threshold=10**9)
    hnsw = VectorIndex(32, hnsw_threshold=1000)
    exact.upsert(ids, vectors)
    hnsw.upsert(ids, vectors)
    assert hnsw.kind == "hnsw" and exact.kind == "exact"
    queries = _unit(rng, 50)
    recall = np.mean([len({i for i, _ in exact.search(q, 10)} & {i for i, _ in hnsw.search(q, 10)}) / 10 for q in queries])
    assert recall >= 0.95
    hnsw.remove(["id5"])
    assert "id5" not in {i for i, _ in hnsw.search(vectors[5], 10)}
    hnsw.upsert(["id5"], vectors[5:6])
    assert hnsw.search(vectors[5], 1)[0][0] == "id5"
    assert len(hnsw) == 3000


def test_filter_facets_match_lists_aliases_and_any():
    chunk = {"ai_libraries": ["Semantic Kernel"], "ai_providers": ["Any"], "dotnet_versions": [".NET 8"]}
    known = {"ai_libraries": {"semantickernel", "mlnet"}, "ai_providers": {"ollama", "any"}, "dotnet_versions": {"net8", "net9"}}
    prefs = facets.preferences({"aiLibrary": "semantic-kernel", "aiProvider": "Ollama", "dotnetVersion": "net8.0"}, known)
    assert facets.matches(chunk, prefs) == 3  # "Any" provider counts
    assert facets.matches(chunk, prefs, strict=True) == 2
    assert facets.matches(chunk, facets.preferences({"aiLibrary": "ML.NET"}, known)) == 0
    assert facets.matches({"title": "legacy chunk without tags"}, facets.preferences({"aiLibrary": "ML.NET"}, known)) == 0


def test_one_relevance_orders_passages_and_diversity():
    chunks = {"a": {"ai_libraries": ["ML.NET"]}, "b": {}, "c": {}}
    scores = final_scores({"a": 0.50, "b": 0.52, "c": 0.9}, {"c": 4.0, "b": 4.0}, chunks, {"ai_libraries": "mlnet"})
    assert scores["a"] == 0.50 + FACET_BOOST and scores["c"] <= 1.0  # clamped to 0-1
    assert sorted(scores, key=lambda i: -scores[i])[0] == "c"
    chunks = {"a1": {"doc_id": "a"}, "a2": {"doc_id": "a"}, "a3": {"doc_id": "a", "content": "```csharp\nx\n```"},
              "b1": {"doc_id": "b"}}
    assert select_diverse(["a1", "a2", "a3", "b1"], chunks, 3) == ["a1", "a2", "b1"]
    assert select_diverse(["a1", "a2", "a3", "b1"], chunks, 3, prefer_code=True) == ["a1", "a3", "b1"]
