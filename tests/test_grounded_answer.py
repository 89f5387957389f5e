"""The offline model's answer composer: cites only returned URLs, abstains honestly."""

from __future__ import annotations

import json
import re

from evals.graders import cited_urls
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


def read(url, chunks, title="T"):
    """What `read_kb_article` returns: every chunk of the article, in order."""
    return ToolResult(tool="read_kb_article", results=[
        {"title": title, "url": url, "section": section, "content": content, "chunk": i}
        for i, (section, content) in enumerate(chunks)])


def test_the_answer_leads_with_the_block_that_answers_not_the_article_framing():
    url = "https://a.example/middleware"
    framing = ('This article answers "where do I put logging around an agent?" It summarises the '
               '"Agent Middleware" page, which describes three interception points.')
    answering = ("Function-calling middleware wraps each tool invocation and sees a `FunctionInvocationContext`, "
                 "so it can log or block a call.")
    answer = compose_answer("Where can I log and block function calls of an agent?", [
        kb(passage(url, framing)),
        read(url, [("T", framing), ("T > Registering middleware", "Call `AsBuilder()` on an agent, then `Use(...)`."),
                   ("T > Function middleware", answering)]),
    ], min_relevance=0.35)
    assert answer.startswith(answering) and "This article answers" not in answer


def test_an_example_split_across_chunks_comes_back_as_one_code_block():
    url = "https://a.example/vectors"
    answer = compose_answer("How do I search the collection?", [
        kb(passage(url, "Search the collection with `SearchAsync`.")),
        read(url, [("T > Search", "Search the collection with `SearchAsync`.\n\n```csharp\nvar hits = "
                                  "collection.SearchAsync(query, top: 3);"),
                   ("T > Search", "await foreach (var hit in hits)\n    Console.WriteLine(hit.Record);\n```\n\n"
                                  "Results arrive best first.")]),
    ], min_relevance=0.35)
    code = answer[answer.index("```csharp"):]
    assert "SearchAsync(query, top: 3);\nawait foreach" in code and code.count("```") == 2
    assert not re.search(r"^await foreach", answer[:answer.index("```csharp")], re.M)  # never code as prose


def test_a_two_part_how_question_gets_an_example_for_each_part():
    url = "https://a.example/openai"
    chunks = [("T > Images", "Generate images with `ImageClient`.\n\n```csharp\nvar images = new ImageClient(\"gpt-image-1\", key);\n```"),
              ("T > Audio", "Transcribe audio with `AudioClient`.\n\n```csharp\nvar stt = new AudioClient(\"whisper-1\", key);\n```"),
              ("T > Install", "```bash\ndotnet add package OpenAI\n```")]
    answer = compose_answer("How do I generate images and transcribe audio?",
                            [kb(passage(url, chunks[0][1])), read(url, chunks)], min_relevance=0.35)
    assert "new ImageClient" in answer and "new AudioClient" in answer
    assert answer.index("dotnet add package OpenAI") < answer.index("```csharp")


def test_titles_with_brackets_still_make_a_link():
    answer = compose_answer("How do I mark an OllamaSharp tool?", [kb(passage(
        "https://a.example/tools", "Mark the method with the `[OllamaTool]` attribute to expose an OllamaSharp tool.",
        title="Tool calling with OllamaSharp - [OllamaTool] source generator"))], min_relevance=0.35)
    assert cited_urls(answer) == ["https://a.example/tools"]  # the graders' (and the page's) link syntax


def test_a_sentence_that_announces_an_example_keeps_it_and_the_citation_stays_out_of_the_fence():
    url = "https://a.example/filters"
    content = ("Filters fire only when you pass the kernel to the chat completion service:\n\n"
               "```csharp\nvar reply = await chat.GetChatMessageContentAsync(history, settings, kernel);\n```")
    answer = compose_answer("Why does my kernel filter never run with the chat completion service?",
                            [kb(passage(url, content))], min_relevance=0.35)
    assert answer.startswith("Filters fire only when you pass the kernel to the chat completion service "
                             "([T](https://a.example/filters)):\n\n```csharp\nvar reply")
    assert not re.search(r"^```.+\)$", answer, re.M) and answer.count("```") == 2
