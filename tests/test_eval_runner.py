"""The eval runner end to end: in process on the seeded KB, against a running server, the judge, --from-feedback."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from evals.models import load_case_file
from evals.run_evaluations import EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, run
from tests.utils.app import copy_seeded_data_dir, make_settings, serve_aiohttp, served_app

MEAI_URL = "https://learn.microsoft.com/en-us/dotnet/ai/quickstarts/build-chat-app"
CHAT_CASES = {"kind": "chat", "cases": [
    {"id": "t-meai", "question": "How do I call an OpenAI chat model from C# with Microsoft.Extensions.AI?",
     "expected_sources": [MEAI_URL], "expected_facts": ["IChatClient"], "category": "meai", "difficulty": "easy"},
    {"id": "t-ood", "question": "What is the best recipe for a vegetarian lasagna?", "expect_abstention": True,
     "category": "out-of-domain", "difficulty": "easy"},
    {"id": "t-needs-tool", "question": "Search the web for today's .NET news", "expected_facts": ["news"],
     "requires_tools": ["no_such_tool"], "category": "tools"},
]}
TAG_CASES = {"kind": "categorization", "cases": [
    {"id": "t-tag", "text": "A KernelFunction in Semantic Kernel", "expected_tags": ["Semantic Kernel"]},
    {"id": "t-none", "text": "Entity Framework Core migrations", "expected_tags": []},
]}
LENIENT = {"min": {"hit_at_5": 0.5, "abstention_accuracy": 0.5, "categorization_f1": 0.5}, "max": {"stream_errors": 0}}
IMPOSSIBLE = {"min": {"facts": 1.01}}


def _files(tmp_path: Path) -> dict[str, Path]:
    paths = {"chat": tmp_path / "chat.json", "tags": tmp_path / "tags.json", "lenient": tmp_path / "lenient.json",
             "impossible": tmp_path / "impossible.json"}
    for key, data in (("chat", CHAT_CASES), ("tags", TAG_CASES), ("lenient", LENIENT), ("impossible", IMPOSSIBLE)):
        paths[key].write_text(json.dumps(data), encoding="utf-8")
    return paths


def _only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow  # its own app start-up, graded chats and every report written (~5-10 s here)
async def test_in_process_run_writes_every_artefact(tmp_path, seeded_settings):
    files = _files(tmp_path)
    out = tmp_path / "results"
    code = await run(["--cases", str(files["chat"]), str(files["tags"]), "--thresholds", str(files["lenient"]),
                      "--out", str(out), "--concurrency", "2", "--no-judge", "--quiet"], settings=seeded_settings)
    assert code == EXIT_OK
    run_dir = _only_run(out)
    assert {p.name for p in run_dir.iterdir()} == {"report.md", "results.json", "results.csv", "chart.png"}
    assert (run_dir / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data = json.loads((run_dir / "results.json").read_text())
    chat = {c["id"]: c for c in data["chat"]}
    assert chat["t-meai"]["hit_at_k"] == 1.0 and chat["t-meai"]["passed"]
    assert MEAI_URL in chat["t-meai"]["returned_sources"] and chat["t-meai"]["span_id"]
    assert chat["t-ood"]["abstained"] == 1.0 and chat["t-ood"]["passed"]
    assert chat["t-needs-tool"]["status"] == "skipped" and "no_such_tool" in chat["t-needs-tool"]["note"]
    assert data["summary"]["cited_in_sources"] == 1.0 and data["summary"]["categorization_f1"] == 1.0
    assert all(check["ok"] for check in data["thresholds"])

    import pandas as pd

    frame = pd.read_csv(run_dir / "results.csv")
    assert set(frame["id"]) == {"t-meai", "t-ood", "t-needs-tool", "t-tag", "t-none"}
    report = (run_dir / "report.md").read_text()
    for heading in ("## Summary", "## Per category", "## Failures", "## Skipped", "![scores](chart.png)"):
        assert heading in report
    assert "LLM judge skipped: --no-judge." in report


@pytest.mark.slow  # a live uvicorn server
async def test_running_server_is_scored_through_http_and_thresholds_gate(tmp_path, seeded_settings, capsys):
    files = _files(tmp_path)
    async with served_app(seeded_settings) as (base_url, _app):
        passed = await run(["--base-url", base_url, "--cases", str(files["chat"]), "--thresholds", str(files["lenient"]),
                            "--out", str(tmp_path / "ok"), "--no-judge", "--quiet"])
        missed = await run(["--base-url", base_url, "--cases", str(files["chat"]), "--thresholds", str(files["impossible"]),
                            "--out", str(tmp_path / "missed"), "--no-judge", "--quiet"])
    assert passed == EXIT_OK and missed == EXIT_THRESHOLD
    printed = capsys.readouterr().out
    assert "MISS facts" in printed
    data = json.loads((_only_run(tmp_path / "ok") / "results.json").read_text())
    assert data["run"]["target"] == base_url
    chat = {c["id"]: c for c in data["chat"]}
    assert chat["t-meai"]["hit_at_k"] == 1.0 and chat["t-ood"]["abstained"] == 1.0
    assert chat["t-needs-tool"]["status"] == "graded"  # a remote server's tools are unknown, so it is asked
    assert "FAILED" in (_only_run(tmp_path / "missed") / "report.md").read_text()


async def test_unusable_input_exits_2_with_the_problem_named(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "chat", "cases": [{"id": "oops", "category": "x"}]}))
    assert await run(["--cases", str(bad), "--quiet"]) == EXIT_USAGE
    assert f"{bad}: case 'oops': question: Field required" in capsys.readouterr().err
    thresholds = tmp_path / "t.json"
    thresholds.write_text("{}")
    files = _files(tmp_path)
    assert await run(["--cases", str(files["tags"]), "--thresholds", str(thresholds), "--quiet"]) == EXIT_USAGE
    assert "expected {\"min\"" in capsys.readouterr().err
    thresholds.write_text(json.dumps({"min": {"hit_at_50": 0.9}}))
    assert await run(["--cases", str(files["tags"]), "--thresholds", str(thresholds), "--quiet"]) == EXIT_USAGE
    assert "unknown metric 'hit_at_50'" in capsys.readouterr().err


@contextlib.asynccontextmanager
async def judge_standin(replies: dict[str, str]):
    """An OpenAI-compatible /v1/chat/completions on loopback; the reply is chosen by a word in the prompt."""
    from aiohttp import web

    seen: list[str] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        seen.append(prompt)
        content = next((reply for word, reply in replies.items() if word in prompt), replies["*"])
        return web.json_response({"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": content}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serve_aiohttp(app) as base_url:
        yield f"{base_url}/v1", seen


async def test_llm_judge_scores_when_keyed(tmp_path, seeded_data_dir):
    files = _files(tmp_path)
    good = json.dumps({"accuracy": 4, "helpfulness": 5, "code_correctness": None, "rationale": "Grounded."})
    async with judge_standin({"lasagna": "not json at all", "*": good}) as (url, seen):
        copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
        # keyed for the judge, but the assistant under test stays the offline model
        settings = make_settings(tmp_path, openai_api_key="sk-test", openai_base_url=url, offline_model=True)
        code = await run(["--cases", str(files["chat"]), "--thresholds", str(files["lenient"]), "--out",
                          str(tmp_path / "out"), "--judge-model", "judge-1", "--quiet"], settings=settings)
    assert code == EXIT_OK
    assert len(seen) == 2 and any("Microsoft.Extensions.AI" in p for p in seen)
    data = json.loads((_only_run(tmp_path / "out") / "results.json").read_text())
    chat = {c["id"]: c for c in data["chat"]}
    assert chat["t-meai"]["judge"]["accuracy"] == 4 and chat["t-meai"]["judge_rationale"] == "Grounded."
    assert "JudgeReplyError" in chat["t-ood"]["judge"]["error"]  # a bad reply is noted, the run goes on
    assert data["summary"]["judge_accuracy"] == 4.0 and data["summary"]["judge_code_correctness"] is None
    assert "LLM judge: judge-1" in (_only_run(tmp_path / "out") / "report.md").read_text()


async def test_from_feedback_drafts_cases_from_thumbs_down(tmp_path, seeded_settings, capsys):
    from services.storage.database import CONVERSATIONS, FEEDBACK, open_database

    conversation = {"_id": "conv-1", "turns": [
        {"span_id": "aaaaaaaaaaaaaaaa", "user": "How do I count tokens in C#?", "assistant": "Use Microsoft.ML.Tokenizers.",
         "sources": [{"title": "Tokens", "url": "https://example.org/tokens"}], "filters": {}},
        {"span_id": "bbbbbbbbbbbbbbbb", "user": "And for Llama models?", "assistant": "I don't know.",
         "sources": [{"title": "Tok", "url": "https://example.org/tok", "score": 0.2}],
         "filters": {"aiLibrary": "Microsoft.ML.Tokenizers", "unknown": "x"}},
    ]}
    database = await open_database(seeded_settings)
    try:
        await database[CONVERSATIONS].insert_one(conversation)
        await database[FEEDBACK].insert_one({"_id": "bbbbbbbbbbbbbbbb", "span_id": "bbbbbbbbbbbbbbbb",
                                             "feedback_type": "thumbs_down", "comment": "LlamaTokenizer exists!",
                                             "conversation_id": "conv-1"})
        await database[FEEDBACK].insert_one({"_id": "aaaaaaaaaaaaaaaa", "span_id": "aaaaaaaaaaaaaaaa",
                                             "feedback_type": "thumbs_up", "conversation_id": "conv-1"})
        await database[FEEDBACK].insert_one({"_id": "cccccccccccccccc", "span_id": "cccccccccccccccc",
                                             "feedback_type": "thumbs_down", "conversation_id": None})
    finally:
        await database.close()

    out = tmp_path / "drafts" / "feedback.json"
    assert await run(["--from-feedback", str(out)], settings=seeded_settings) == EXIT_OK
    streams = capsys.readouterr()
    assert "1 new draft case(s)" in streams.out and "span cccccccccccccccc" in streams.err

    chat, _ = load_case_file(out)  # drafts load as ordinary cases
    assert [c.id for c in chat] == ["feedback-bbbbbbbbbbbbbbbb"]
    draft = chat[0]
    assert draft.draft and draft.question == "And for Llama models?"
    assert [(h.role, h.content) for h in draft.history] == [("user", "How do I count tokens in C#?"),
                                                           ("assistant", "Use Microsoft.ML.Tokenizers.")]
    assert draft.filters.active() == {"aiLibrary": "Microsoft.ML.Tokenizers"}
    assert draft.expected_sources == []  # left for a person: the disliked answer's sources may be the problem
    assert draft.feedback["comment"] == "LlamaTokenizer exists!"
    assert draft.feedback["sources"] == [{"title": "Tok", "url": "https://example.org/tok"}]

    # a second run keeps reviewed edits and adds nothing twice
    data = json.loads(out.read_text())
    data["cases"][0]["expected_facts"] = ["LlamaTokenizer"]
    out.write_text(json.dumps(data))
    assert await run(["--from-feedback", str(out)], settings=seeded_settings) == EXIT_OK
    assert "0 new draft case(s)" in capsys.readouterr().out
    assert json.loads(out.read_text())["cases"][0]["expected_facts"] == ["LlamaTokenizer"]

    assert await run(["--from-feedback", str(tmp_path / "drafts.yaml")], settings=seeded_settings) == EXIT_USAGE


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--k", "0"]])
async def test_option_bounds(argv, capsys):
    assert await run([*argv, "--quiet"]) == EXIT_USAGE
    assert "at least 1" in capsys.readouterr().err
