"""Article parsing and heading/code-aware chunking."""

from __future__ import annotations

import pytest

from services.retrieval.corpus import DEFAULT_KB_DIR, ArticleError, chunk_markdown, count_tokens, load_articles, parse_article

ARTICLE = """---
title: Demo
source_url: https://learn.microsoft.com/en-us/dotnet/ai/
ai_library: Semantic Kernel, ML.NET
ai_provider: OpenAI
dotnet_version: 8, net9.0
tags: demo
---
# Demo
"""


def test_front_matter_becomes_tags():
    article = parse_article(ARTICLE + "Body text.", doc_id="demo")
    assert article.ai_libraries == ["Semantic Kernel", "ML.NET"]
    assert article.dotnet_versions == [".NET 8", ".NET 9"]
    assert article.tags == ["Semantic Kernel", "ML.NET", "OpenAI", ".NET 8", ".NET 9", "demo"]


@pytest.mark.parametrize("text, problem", [
    ("---\ntitle: [broken\n---\nbody", "front matter"),
    ("---\ntitle: T\nsource_url: ftp://x\n---\nbody", "source_url"),
    ("---\nsource_url: https://x.y\n---\nno heading", "title"),
])
def test_bad_articles_are_reported_with_their_name(text, problem):
    with pytest.raises(ArticleError, match=problem) as info:
        parse_article(text, doc_id="bad-one")
    assert "bad-one" in str(info.value)


def test_chunks_are_bounded_and_never_split_code():
    code = "```csharp\n" + "\n".join(f"var x{i} = await client.GetResponseAsync(\"q{i}\");" for i in range(12)) + "\n```"
    body = "\n\n".join(["## Intro", "Words " * 150, "## Code", "Before the example. " * 5, code, "After. " * 30])
    chunks = chunk_markdown(body, max_tokens=200, overlap_tokens=40)
    assert all(count_tokens(c["content"]) <= 200 for c in chunks if "```" not in c["content"])
    holding = [c for c in chunks if "```csharp" in c["content"]]
    assert len(holding) == 1 and holding[0]["content"].count("```") == 2
    assert holding[0]["section"] == "Code"
    assert {c["section"] for c in chunks} == {"Intro", "Code"}


def test_consecutive_chunks_overlap():
    body = "\n\n".join(f"Paragraph {i} " + "word " * 25 for i in range(12))
    chunks = chunk_markdown(body, max_tokens=100, overlap_tokens=40)
    assert len(chunks) > 2
    for first, second in zip(chunks, chunks[1:]):
        assert first["content"].split("\n\n")[-1] == second["content"].split("\n\n")[0]


def test_the_shipped_corpus_is_complete_and_valid():
    articles, problems = load_articles(DEFAULT_KB_DIR)
    assert problems == []
    assert len(articles) >= 40
    assert len({a.source_url for a in articles}) == len(articles)
    assert all(a.ai_libraries and a.dotnet_versions and a.ai_providers for a in articles)
