"""How retrieved chunks become the ranked passages the tool returns: one relevance, diverse articles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.retrieval import facets

MAX_CHUNKS_PER_DOC = 2
# Final relevance = cosine + KEYWORD_WEIGHT * (BM25 / best BM25 of the query) + FACET_BOOST * (share of
# the user's known filter facets the passage carries), clamped to 0-1. Chosen by measurement
# (`python -m evals.retrieval`, README "Retrieval"): a convex score ranks better than RRF here
# and gives every passage one comparable number, so `score` follows the list order.
KEYWORD_WEIGHT = 0.15
FACET_BOOST = 0.08
_CSHARP_FENCE = re.compile(r"^(```|~~~)\s*(csharp|cs|c#)\b", re.M | re.I)


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
