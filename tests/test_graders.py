"""Eval graders: pure functions over answers, sources and tags (plus the stream reader and judge parsing)."""

from __future__ import annotations

import pytest

from evals import graders as g
from evals.judge import JudgeReplyError, judge_prompt, parse_judge_reply
from evals.models import ChatCase
from evals.runner import grade_chat, read_stream
from evals.summary import ThresholdsError, check_thresholds

A, B, C, D = (f"https://learn.microsoft.com/en-us/dotnet/ai/{x}" for x in "abcd")


async def test_hit_recall_and_reciprocal_rank():
    retrieved = [C, A, D]
    assert g.hit_at_k(retrieved, [A], k=5) == 1.0
    assert g.hit_at_k(retrieved, [A], k=1) == 0.0
    assert g.hit_at_k(retrieved, [B], k=5) == 0.0
    assert g.recall_at_k(retrieved, [A, B], k=5) == 0.5
    assert g.recall_at_k(retrieved, [A, D], k=2) == 0.5
    assert g.reciprocal_rank(retrieved, [A, D]) == 0.5
    assert g.reciprocal_rank(retrieved, [D], k=2) == 0.0
    assert g.reciprocal_rank([], [A]) == 0.0


async def test_urls_compare_loosely_and_repeats_do_not_take_ranks():
    retrieved = ["HTTPS://Learn.Microsoft.com/en-us/dotnet/ai/c/", C + "#section", A]
    assert g.reciprocal_rank(retrieved, [A]) == 0.5  # the two C spellings are one rank
    assert g.hit_at_k([A + "/"], ["http://learn.microsoft.com/en-us/dotnet/ai/a"]) == 1.0


async def test_cited_urls_and_grounding():
    answer = f"Use it ([Doc A]({A})). See also [B]({B}), and again [Doc A]({A}). Not a link: {D}"
    assert g.cited_urls(answer) == [A, B]
    grounded = g.grounding(answer, [A, C])
    assert grounded.cited == [A, B] and grounded.outside == [B]
    assert grounded.has_citation and not grounded.all_in_sources
    assert g.grounding("no links at all", [A]).all_in_sources
    assert not g.grounding("no links at all", [A]).has_citation


async def test_facts_are_normalised_and_accept_alternatives():
    answer = "Call `GetResponseAsync<T>` \u2014 it returns **typed** results; the service’s JSON\u00a0schema applies."
    assert g.fact_present(answer, "getresponseasync<t>")
    assert g.fact_present(answer, "service's json schema")
    assert g.fact_present(answer, ["nope", "typed results"])
    assert not g.fact_present(answer, "ChatClientAgent")
    score, missing = g.facts_score(answer, ["GetResponseAsync<T>", "ChatClientAgent", ["x", "JSON schema"]])
    assert score == pytest.approx(2 / 3) and missing == ["ChatClientAgent"]
    assert g.facts_score(answer, []) == (1.0, [])


async def test_abstention():
    assert g.is_abstention("I don't know: nothing about that here.")
    assert g.is_abstention("Sorry — I don\u2019t know.")
    assert not g.is_abstention("Here is what I found.")
    assert g.abstention_correct("I don't know", expect_abstention=True)
    assert not g.abstention_correct("Here is what I found", expect_abstention=True)
    assert not g.abstention_correct("I don't know", expect_abstention=False)


async def test_tools_ok():
    assert g.tools_ok(["search_knowledge_base", "search_nuget_packages"], ["search_nuget_packages"])
    assert not g.tools_ok(["search_knowledge_base"], ["search_nuget_packages"])
    assert g.tools_ok([], [])


async def test_tag_precision_recall_f1():
    s = g.tag_scores(["A", "B"], ["B", "C"])
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert g.tag_scores([], []).f1 == 1.0  # nothing expected, nothing predicted: right
    assert g.tag_scores(["A"], []).precision == 0.0
    assert g.tag_scores([], ["A"]).recall == 0.0
    micro = g.micro_tag_scores([(["A"], ["A"]), (["B"], ["C"]), ([], [])])
    assert (micro.precision, micro.recall) == (0.5, 0.5)


def _stream(answer: str, sources: list[str], *, complete: bool = True, tool: str = "search_knowledge_base") -> list[dict]:
    lines = [{"type": "metadata", "span_id": "0123456789abcdef", "timestamp": "t"},
             {"type": "tool_call", "content": "Searching…", "name": tool, "arguments": "{}"},
             {"type": "tool output", "content": "Found", "name": tool,
              "sources": [{"title": u[-1], "url": u, "score": 0.5} for u in sources]},
             {"type": "something-new", "content": "ignored"}]
    lines += [{"type": "content", "content": answer[i:i + 7]} for i in range(0, len(answer), 7)]
    if complete:
        lines.append({"type": "complete", "span_id": "0123456789abcdef", "timestamp": "t"})
    return lines


async def test_read_stream_folds_lines_like_the_website():
    t = read_stream(_stream(f"See [A]({A}).", [A, B, A]))
    assert t.answer == f"See [A]({A})." and t.span_id == "0123456789abcdef"
    assert t.source_urls == [A, B] and t.tool_calls[0]["name"] == "search_knowledge_base"
    assert t.error is None
    assert read_stream(_stream("cut", [A], complete=False)).error == "the stream ended without a complete line"
    error = read_stream([{"type": "metadata"}, {"type": "error", "content": "Sorry"}])
    assert error.error == "Sorry"


def _case(**fields) -> ChatCase:
    return ChatCase.model_validate({"id": "c1", "question": "q?", "category": "x", **fields})


async def test_grade_chat_scores_a_good_answer_and_explains_a_bad_one():
    case = _case(expected_sources=[B], expected_facts=["IChatClient"])
    good = grade_chat(case, read_stream(_stream(f"Use IChatClient ([B]({B})).", [A, B])))
    assert good.passed and good.scores["hit_at_k"] == 1.0 and good.scores["reciprocal_rank"] == 0.5
    assert good.scores["cited_when_relevant"] == 1.0 and good.scores["facts"] == 1.0

    bad = grade_chat(case, read_stream(_stream(f"Something else ([D]({D})).", [A, B])))
    assert not bad.passed
    assert bad.outside_citations == [D]
    assert any("no tool returned" in f for f in bad.failures)
    assert any("missing facts" in f for f in bad.failures)

    uncited = grade_chat(case, read_stream(_stream("IChatClient, trust me.", [B])))
    assert uncited.scores["cited_when_relevant"] == 0.0 and not uncited.passed


async def test_grade_chat_abstention_and_errors():
    ood = _case(expect_abstention=True)
    assert grade_chat(ood, read_stream(_stream("I don't know: nothing found.", [A]))).passed
    answered = grade_chat(ood, read_stream(_stream(f"Here ([A]({A})).", [A])))
    assert not answered.passed and "should say I don't know" in answered.failures[0]
    broken = grade_chat(ood, read_stream(_stream("partial", [A], complete=False)))
    assert broken.status == "error" and not broken.passed


async def test_retrieval_metrics_use_knowledge_base_sources_only():
    case = _case(expected_sources=[B])
    lines = _stream("x", [A]) + _stream(f"[B]({B})", [B], tool="search_nuget_packages")
    result = grade_chat(case, read_stream(lines))
    assert result.scores["hit_at_k"] == 0.0  # B came from NuGet, not the knowledge base
    assert not result.outside_citations  # but citing it is grounded


async def test_judge_reply_parsing():
    scores = parse_judge_reply('```json\n{"accuracy": 4, "helpfulness": 5, "code_correctness": null, "rationale": "ok"}\n```')
    assert (scores.accuracy, scores.helpfulness, scores.code_correctness) == (4, 5, None)
    with pytest.raises(JudgeReplyError):
        parse_judge_reply('{"accuracy": 9, "helpfulness": 1}')
    with pytest.raises(JudgeReplyError):
        parse_judge_reply("four out of five")
    prompt = judge_prompt(question="Q?", answer="A.", sources=[{"title": "T", "url": A}], facts=[["x", "y"], "z"],
                          expect_abstention=True)
    assert "Q?" in prompt and A in prompt and "x / y; z" in prompt and "does not know" in prompt


async def test_threshold_checks():
    summary = {"hit_at_5": 0.9, "stream_errors": 1, "facts": None}
    checks = check_thresholds(summary, {"min": {"hit_at_5": 0.95, "facts": 0.5}, "max": {"stream_errors": 0}})
    by_metric = {c.metric: c for c in checks}
    assert not by_metric["hit_at_5"].ok and not by_metric["stream_errors"].ok
    assert by_metric["facts"].ok and by_metric["facts"].note == "not measured in this run"
    assert all(c.ok for c in check_thresholds(summary, {"min": {"hit_at_5": 0.9}}))
    with pytest.raises(ThresholdsError, match="unknown metric 'hit_at_50'"):
        check_thresholds(summary, {"min": {"hit_at_50": 0.9}})
