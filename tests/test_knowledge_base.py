"""Seeding the knowledge base: idempotent, only changed documents re-embedded, deleted ones pruned."""

from __future__ import annotations

import numpy as np

from services.retrieval.corpus import parse_article
from services.storage.database import CHUNKS, KB_DOCUMENTS
from services.retrieval.embeddings import LOCAL_DIMENSIONS, LocalEmbedder
from services.ingest.kb_sync import sync_articles
from tests.utils.app import running_app


def _article(doc_id: str, body: str):
    return parse_article(f"---\ntitle: {doc_id} title\nsource_url: https://example.org/{doc_id}\n"
                         f"ai_library: ML.NET\nai_provider: Local\ndotnet_version: .NET 9\n---\n{body}", doc_id=doc_id)


async def test_sync_is_idempotent_updates_changes_and_prunes(seeded_settings):
    async with running_app(seeded_settings) as client:
        services = client.app.state.services
        db, kb = services.database, services.knowledge_base
        before = kb.size
        first = await sync_articles(database=db, kb=kb, origin="test", articles=[
            _article("alpha", "Alpha explains zebra-striped tensors in ML.NET pipelines."),
            _article("beta", "Beta covers quokka embeddings."),
        ])
        assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
        again = await sync_articles(database=db, kb=kb, origin="test", articles=[
            _article("alpha", "Alpha explains zebra-striped tensors in ML.NET pipelines."),
            _article("beta", "Beta covers quokka embeddings."),
        ])
        assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 2, 0)
        changed = await sync_articles(database=db, kb=kb, origin="test", articles=[
            _article("alpha", "Alpha now explains narwhal tokenizers instead."),
        ])
        assert (changed.updated, changed.removed) == (1, 1)
        assert await db[KB_DOCUMENTS].count_documents({"origin": "test"}) == 1
        assert await db[CHUNKS].count_documents({"doc_id": "beta"}) == 0
        hits = await kb.search("narwhal tokenizers", k=3)
        assert hits[0].url == "https://example.org/alpha" and "narwhal" in hits[0].content
        assert all("quokka" not in p.content for p in await kb.search("quokka embeddings", k=10))
        assert kb.size == before + 1
        # the shipped seed is untouched by another origin's sync
        assert await db[KB_DOCUMENTS].count_documents({"origin": "seed"}) >= 40


def test_local_embedder_is_pinned_normalised_and_semantic(local_embedder):
    embedder = local_embedder  # the session's LocalEmbedder()
    assert isinstance(embedder, LocalEmbedder)
    vectors = embedder.embed_sync(["How do I stream chat responses in C#?",
                                   "Streaming a chat completion with IChatClient in .NET",
                                   "Best lasagna recipe with spinach"])
    assert vectors.shape == (3, LOCAL_DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    long_text = "token " * 1000  # truncated at 256 tokens, not an error
    assert embedder.embed_sync([long_text]).shape == (1, LOCAL_DIMENSIONS)


async def test_untagged_articles_are_tagged_by_the_ingestion_tagger(seeded_settings):
    async with running_app(seeded_settings) as client:
        services = client.app.state.services
        article = parse_article("---\ntitle: Plugins\nsource_url: https://example.org/plugins\n---\n"
                                "Register a KernelFunction plugin with Semantic Kernel and call it.", doc_id="plugins")
        assert article.ai_libraries == []
        await sync_articles(database=services.database, kb=services.knowledge_base, articles=[article], origin="t2")
        chunk = await services.database[CHUNKS].find_one({"doc_id": "plugins"})
    assert chunk["ai_libraries"] == ["Semantic Kernel"] and "Semantic Kernel" in chunk["tags"]
