"""What the original C# AI Buddy website sends, as it sends it: default filters, nulls, a transcript
that doubles every turn. Every turn must stream a cited answer (issue: real clients get real answers)."""

from __future__ import annotations

import pytest

from services.agent.history import collapse_duplicates, trim_history
from services.retrieval import facets
from tests.utils.app import answer_text, chat_lines, running_app

WEBSITE_DEFAULTS = {"dotnetVersion": ".NET 9", "aiLibrary": "OpenAI", "aiProvider": "OpenAI"}
QUESTIONS = [
    "How do I generate embeddings?",
    "How do I call an OpenAI chat model from C#?",
    "How do I add a plugin to a Semantic Kernel agent?",
    "How do I run an ONNX model in C#?",
    "How do I build an MCP server in C#?",
]


def test_history_collapses_the_websites_repeats_and_keeps_the_newest_within_budget():
    turn = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    assert collapse_duplicates(turn + turn) == turn  # u,a,u,a: each turn stored twice
    assert collapse_duplicates([turn[0], turn[0], turn[1], turn[1]]) == turn
    long = [{"role": r, "content": f"{r} {i} " + "x" * 900} for i in range(40) for r in ("user", "assistant")]
    kept = trim_history(long, max_items=20, max_chars=5_000)
    assert sum(len(h["content"]) for h in kept) <= 5_000 and kept[0]["role"] == "user"
    assert kept[-1] == long[-1]  # newest first


def test_website_vocabulary_maps_to_kb_facets():
    assert facets.canonical("aiLibrary", "OpenAI") == "OpenAI .NET SDK"
    assert facets.canonical("aiLibrary", "semantic-kernel") == "Semantic Kernel"
    assert facets.canonical("aiProvider", "Amazon Bedrock") == "Amazon Bedrock"
    assert facets.canonical("aiProvider", "Google Cloud") == "Google Cloud"
    assert facets.canonical("dotnetVersion", "net9.0") == ".NET 9"
    assert facets.canonical("dotnetVersion", ".NET Framework") == ".NET Framework"
    known = {"ai_libraries": {facets.key("OpenAI .NET SDK")}, "ai_providers": set(), "dotnet_versions": set()}
    prefs = facets.preferences({"aiLibrary": "OpenAI", "aiProvider": "Something new", "dotnetVersion": "Other"}, known)
    assert prefs == {"ai_libraries": "openainetsdk"}  # unknown values are ignored by retrieval


async def test_default_filters_never_empty_the_answer_and_keep_the_ranking(seeded_settings):
    async with running_app(seeded_settings) as client:
        kb = client.app.state.services.knowledge_base
        for question in QUESTIONS:
            plain = await kb.search(question, k=5)
            filtered = await kb.search(question, filters=WEBSITE_DEFAULTS, k=5)
            assert filtered, question
            assert filtered[0].url in {p.url for p in plain[:3]}, question
            scores = [p.score for p in filtered]
            assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        # a filter on a topic the KB holds brings that topic's passages in, though the question never names it
        generic = "How do I call a chat model?"
        assert not any("Bedrock" in p.title for p in await kb.search(generic, k=5))
        bedrock = await kb.search(generic, filters={"aiProvider": "Amazon Bedrock"}, k=5)
        assert any("Bedrock" in p.title for p in bedrock)


async def test_nulls_are_accepted_like_the_original_api(seeded_settings):
    async with running_app(seeded_settings) as client:
        status, lines = await chat_lines(client, {"message": QUESTIONS[0], "filters": None, "history": None,
                                                  "magic_key": None})
        assert status == 200 and lines[-1]["type"] == "complete"
        status, _ = await chat_lines(client, {"message": QUESTIONS[0], "filters": {"aiLibrary": None},
                                              "history": [{"role": "user", "content": None},
                                                          {"role": "assistant", "content": "ok"}]})
        assert status == 200


@pytest.mark.slow
async def test_twenty_turns_of_the_websites_growing_transcript(seeded_settings):
    from services.storage.conversations import open_session

    async with running_app(seeded_settings) as client:
        budget = seeded_settings.history_max_chars
        history: list[dict] = []
        for turn in range(20):
            question = QUESTIONS[turn % len(QUESTIONS)]
            status, lines = await chat_lines(client, {"message": question, "history": history,
                                                      "filters": WEBSITE_DEFAULTS, "magic_key": None})
            assert status == 200, (turn, lines)
            assert lines[0]["type"] == "metadata" and lines[-1]["type"] == "complete", (turn, lines[-1])
            answer = answer_text(lines)
            assert "](http" in answer and not answer.startswith("I don't know"), (turn, answer[:200])
            # what reached the model: the session the turn started from (its seeded history + this turn)
            session = open_session(client.app.state.services.database, lines[0]["conversation_id"])
            items = await session.get_items()
            seeded = [i for i in items if i.get("role") in ("user", "assistant") and isinstance(i.get("content"), str)]
            assert sum(len(i["content"]) for i in seeded[:-1]) <= budget + len(question)
            exchange = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            history = history + exchange + exchange  # the website stores each turn twice
        assert len(history) == 80
