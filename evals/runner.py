"""Runs eval cases against the assistant (in process, or a running server) and grades each answer.

Both targets read the same NDJSON lines the website gets, so what is scored is what users see.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from evals import graders as g
from evals.kb_lookup import cites_stale, source_has_code
from evals.models import CategorizationCase, ChatCase

FACTS_PASS = 0.5  # a case fails on facts only when fewer than half of its expected facts are present


@dataclass
class Transcript:
    """What one chat turn produced, read from its NDJSON lines."""

    answer: str = ""
    sources: list[dict] = field(default_factory=list)  # every tool's sources, in order, one per URL
    tool_calls: list[dict] = field(default_factory=list)  # {"name", "arguments"}
    kb_source_urls: list[str] = field(default_factory=list)  # the knowledge-base search's ranking: what retrieval scores
    error: str | None = None
    span_id: str | None = None
    seconds: float = 0.0

    @property
    def source_urls(self) -> list[str]:
        return [s["url"] for s in self.sources]


def read_stream(lines: list[dict]) -> Transcript:
    """Fold the stream's lines into a transcript (unknown line types are ignored, like the website does)."""
    out = Transcript()
    parts: list[str] = []
    seen: set[str] = set()
    completed = False
    for item in lines:
        kind = item.get("type")
        if kind == "metadata":
            out.span_id = item.get("span_id")
        elif kind == "content":
            parts.append(str(item.get("content", "")))
        elif kind == "tool_call":
            out.tool_calls.append({"name": item.get("name") or "", "arguments": item.get("arguments")})
        elif kind == "tool output":
            tool = item.get("name") or None
            for source in item.get("sources") or []:
                url = source.get("url") if isinstance(source, dict) else None
                if not url:
                    continue
                if tool in ("search_knowledge_base", None) and url not in out.kb_source_urls:
                    out.kb_source_urls.append(url)
                if url not in seen:
                    seen.add(url)
                    out.sources.append({**source, "tool": tool})
        elif kind == "error":
            out.error = str(item.get("content") or "error line in the stream")
        elif kind == "complete":
            completed = True
    out.answer = "".join(parts)
    if out.error is None and not completed:
        out.error = "the stream ended without a complete line"
    return out


class Target(Protocol):
    available_tools: set[str] | None  # None: unknown (a remote server)

    async def ask(self, case: ChatCase) -> Transcript: ...


class InProcessTarget:
    """The agent run of an `AppServices` (`services.agent.run.ChatRunner`), as the NDJSON lines `/api/chat` sends."""

    def __init__(self, services) -> None:
        self.runner = services.chat
        self.available_tools = {getattr(t, "name", "") for t in services.chat.agent.tools}

    async def ask(self, case: ChatCase) -> Transcript:
        from services.agent.run import ChatTurn
        from web.ndjson import ndjson_stream

        turn = ChatTurn(message=case.question, history=[h.model_dump() for h in case.history],
                        filters=case.filters.active())
        started = time.perf_counter()
        lines = [json.loads(raw) async for raw in ndjson_stream(self.runner.run(turn))]
        transcript = read_stream(lines)
        transcript.seconds = time.perf_counter() - started
        return transcript


class HttpTarget:
    """A running server's `POST /api/chat`, read as a stream with httpx."""

    def __init__(self, base_url: str, *, magic_key: str | None = None, timeout: float = 120.0,
                 max_retries: int = 5) -> None:
        import httpx

        self.available_tools = None
        self.magic_key = magic_key
        self.max_retries = max_retries
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def ask(self, case: ChatCase) -> Transcript:
        payload = {"message": case.question, "history": [h.model_dump() for h in case.history],
                   "filters": case.filters.active()}
        if self.magic_key:
            payload["magic_key"] = self.magic_key
        started = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            async with self.client.stream("POST", "/api/chat", json=payload) as response:
                if response.status_code == 429 and attempt < self.max_retries:
                    # The server's rate limit: wait as told rather than scoring a refusal.
                    wait = float(response.headers.get("retry-after") or 2)
                    await response.aread()
                    await asyncio.sleep(min(max(wait, 0.5), 60.0))
                    continue
                if response.status_code != 200:
                    body = (await response.aread()).decode("utf-8", "replace")
                    try:
                        detail = json.loads(body).get("detail", body)
                    except (json.JSONDecodeError, AttributeError):
                        detail = body
                    return Transcript(error=f"HTTP {response.status_code}: {str(detail)[:300]}",
                                      seconds=time.perf_counter() - started)
                lines = [json.loads(raw) async for raw in response.aiter_lines() if raw.strip()]
            transcript = read_stream(lines)
            transcript.seconds = time.perf_counter() - started
            return transcript
        return Transcript(error="rate limited", seconds=time.perf_counter() - started)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class ChatResult:
    case: ChatCase
    status: str = "graded"  # graded | skipped | error
    note: str = ""
    transcript: Transcript = field(default_factory=Transcript)
    scores: dict[str, float | None] = field(default_factory=dict)
    missing_facts: list = field(default_factory=list)
    outside_citations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    judge: dict | None = None

    @property
    def passed(self) -> bool:
        return self.status == "graded" and not self.failures


def grade_chat(case: ChatCase, transcript: Transcript, *, k: int = 5) -> ChatResult:
    """Score one transcript with every grader that applies to the case; failures say why."""
    result = ChatResult(case=case, transcript=transcript)
    if transcript.error:
        result.status, result.note = "error", transcript.error
        result.failures.append(f"stream error: {transcript.error}")
        return result
    s = result.scores
    answer = transcript.answer
    abstained = g.is_abstention(answer)
    s["abstained"] = float(abstained)
    s["abstention_correct"] = float(abstained == case.expect_abstention)
    if not s["abstention_correct"]:
        result.failures.append("answered although it should say I don't know" if case.expect_abstention
                               else "said I don't know although the knowledge base covers it")
    if case.expected_sources and not case.expect_abstention:
        retrieved = transcript.kb_source_urls
        s["hit_at_k"] = g.hit_at_k(retrieved, case.expected_sources, k)
        s["recall_at_k"] = g.recall_at_k(retrieved, case.expected_sources, k)
        s["reciprocal_rank"] = g.reciprocal_rank(retrieved, case.expected_sources, k)
        if not s["hit_at_k"]:
            result.failures.append(f"no expected source in the top {k}")
    grounding = g.grounding(answer, transcript.source_urls)
    result.outside_citations = grounding.outside
    s["citations"] = float(len(grounding.cited))
    s["citations_outside"] = float(len(grounding.outside))
    if grounding.outside:
        result.failures.append(f"cites {len(grounding.outside)} URL(s) no tool returned")
    if s.get("hit_at_k") and not abstained:
        # relevant sources came back, so the answer must cite at least one
        s["cited_when_relevant"] = float(grounding.has_citation)
        if not grounding.has_citation:
            result.failures.append("no citation although relevant sources were returned")
    if case.expected_facts:
        s["facts"], result.missing_facts = g.facts_score(answer, case.expected_facts)
        if s["facts"] < FACTS_PASS:
            result.failures.append(f"missing facts: {result.missing_facts}")
    s["cites_stale"] = float(cites_stale(grounding.cited))  # reported, never a gate: a clock must not break CI
    top = transcript.kb_source_urls[0] if transcript.kb_source_urls else None
    code = g.code_when_asked(case.question, answer, bool(top) and source_has_code(top))
    if code is not None:
        s["code_when_asked"] = code
        if not code:
            result.failures.append("no code block although the question asks for code and the top source has one")
    if case.expected_tools:
        called = [c["name"] for c in transcript.tool_calls]
        s["tools_ok"] = float(g.tools_ok(called, case.expected_tools))
        if not s["tools_ok"]:
            result.failures.append(f"expected tool(s) {case.expected_tools} not called (called {called})")
    return result


async def run_chat_cases(target: Target, cases: list[ChatCase], *, concurrency: int = 4, k: int = 5,
                         judge=None, on_done: Callable[[ChatResult], None] | None = None) -> list[ChatResult]:
    """Ask every case with at most `concurrency` in flight; results keep the cases' order."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(case: ChatCase) -> ChatResult:
        missing = sorted(set(case.requires_tools) - target.available_tools) if target.available_tools is not None else []
        if missing:
            result = ChatResult(case=case, status="skipped", note=f"tool(s) not configured: {', '.join(missing)}")
        else:
            async with semaphore:
                try:
                    transcript = await target.ask(case)
                except Exception as exc:  # one broken case must not stop the run
                    transcript = Transcript(error=f"{type(exc).__name__}: {exc}"[:300])
                result = grade_chat(case, transcript, k=k)
                if judge is not None and result.status == "graded":
                    await _judge(judge, result)
        if on_done:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(case) for case in cases)))


async def _judge(judge, result: ChatResult) -> None:
    case = result.case
    try:
        scores = await judge.score(question=case.question, answer=result.transcript.answer,
                                   sources=result.transcript.sources, facts=case.expected_facts,
                                   expect_abstention=case.expect_abstention,
                                   history=[h.model_dump() for h in case.history])
        result.judge = scores.model_dump()
        result.scores.update({f"judge_{name}": float(value) for name, value in result.judge.items()
                              if name != "rationale" and value is not None})
    except Exception as exc:  # a judge failure is reported on the case, not fatal to the run
        result.judge = {"error": f"{type(exc).__name__}: {exc}"[:300]}


@dataclass
class TagResult:
    case: CategorizationCase
    predicted: list[str]
    prf: g.PRF

    @property
    def passed(self) -> bool:
        return set(self.predicted) == set(self.case.expected_tags)


def run_categorization(cases: list[CategorizationCase], tagger: Callable[[str], list[str]] | None = None) -> list[TagResult]:
    """Tag every text with the ingestion tagger and score it against the expected tags."""
    if tagger is None:
        from services.ingest.tagger import tag_text as tagger
    results = []
    for case in cases:
        predicted = list(tagger(case.text))
        results.append(TagResult(case=case, predicted=predicted, prf=g.tag_scores(predicted, case.expected_tags)))
    return results
