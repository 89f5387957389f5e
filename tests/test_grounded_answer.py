"""The offline model's answer composer: cites only returned URLs, abstains honestly."""

from __future__ import annotations

import json
import re

from services.agent.grounded_answer import IDK, compose_answer
from services.agent.tool_results import ToolResult
from services.agent.tool_results import from_output as parse_tool_output

LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def kb(*results):
    return ToolResult(tool="search_knowledge_base", results=list(results))


def passage(url, content, score=0.8, title="T"):
    return {"title": title, "url": url, "content": content, "score": score}


def test_cites_only_returned_urls_and_quotes_matching_sentences():
    answer = compose_answer("How do I stream chat responses?", [kb(
        passage("https://a.example/stream", "Call GetStreamingResponseAsync to stream chat responses token by token. "
                "Unrelated sentence about logging configuration here."),
        passage("https://b.example/low", "Streaming is great for chat responses in every app.", score=0.1),
    )], min_relevance=0.35)
    assert set(LINK.findall(answer)) == {"https://a.example/stream"}
    assert "GetStreamingResponseAsync" in answer


def test_says_i_dont_know_when_nothing_is_relevant_or_quotable():
    low = compose_answer("Best lasagna?", [kb(passage("https://a.example", "Lasagna sentences do not exist here.", 0.1))],
                         min_relevance=0.35)
    assert low.startswith(IDK) and not LINK.search(low)
    heading_only = compose_answer("What is it?", [kb(passage("https://a.example", "# Title only"))], min_relevance=0.35)
    assert heading_only.startswith(IDK)


def test_a_how_question_gets_the_csharp_block():
    content = "Create the client first and then call it from your code.\n\n```csharp\nvar x = 1;\n```"
    answer = compose_answer("How do I create the client?", [kb(passage("https://a.example", content))], min_relevance=0.35)
    assert "```csharp\nvar x = 1;\n```" in answer


def test_tool_outputs_are_read_from_json_mcp_parts_and_errors():
    parsed = parse_tool_output("search_knowledge_base", json.dumps({"results": [{"title": "A", "url": "https://a.example"}]}))
    assert parsed.results[0]["url"] == "https://a.example"
    mcp = parse_tool_output("docs", [{"type": "text", "text": json.dumps([{"title": "L", "contentUrl": "https://l.example"}])}])
    assert mcp.results[0]["url"] == "https://l.example"
    failed = parse_tool_output("search_nuget_packages", json.dumps({"error": "NuGet is down"}))
    assert failed.error == "NuGet is down" and failed.results == []


def test_a_block_that_announces_a_list_brings_the_list():
    content = ("An IChatClient exposes two main operations:\n\n- GetResponseAsync returns the whole answer.\n"
               "- GetStreamingResponseAsync streams the chat response as updates.\n\nUnrelated closing words here.")
    answer = compose_answer("What operations does IChatClient expose for streaming chat?",
                            [kb(passage("https://a.example", content))], min_relevance=0.35)
    assert "- GetStreamingResponseAsync streams" in answer and "- GetResponseAsync" in answer


def test_hard_wrapped_paragraphs_are_read_as_one_and_dangling_openers_get_their_antecedent():
    content = ("Caching middleware stores each answer keyed by the\nrequest, so an identical question\nis served "
               "without a model call.\n\nThis saves money when users repeat the same question about caching.")
    answer = compose_answer("How does caching save money on repeated questions?",
                            [kb(passage("https://a.example", content))], min_relevance=0.35)
    assert "keyed by the request, so an identical question is served" in answer
    assert answer.index("Caching middleware") < answer.index("This saves money")
