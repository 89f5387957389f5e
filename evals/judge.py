"""LLM judge: scores an answer 1–5 for accuracy, helpfulness and code correctness, with a rationale.

Used only when an OpenAI key is configured; otherwise the runner records why it was skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pydantic import BaseModel, Field, ValidationError

log = logging.getLogger(__name__)

JUDGE_SYSTEM = """You grade answers of "C# AI Buddy", an assistant for building AI apps with C# and .NET.
Score each dimension from 1 (very poor) to 5 (excellent):
- accuracy: is every claim correct and supported by the listed sources and reference facts? Invented APIs,
  packages or links score low. A justified "I don't know" for an off-topic question scores 5.
- helpfulness: does it answer what was asked, concisely, with the next step a developer needs?
- code_correctness: would the C# shown compile and do what the answer says? null when there is no code.
Reply with JSON only: {"accuracy": int, "helpfulness": int, "code_correctness": int or null, "rationale": str}.
Keep the rationale to two sentences."""


class JudgeScores(BaseModel):
    accuracy: int = Field(ge=1, le=5)
    helpfulness: int = Field(ge=1, le=5)
    code_correctness: int | None = Field(default=None, ge=1, le=5)
    rationale: str = ""


class JudgeReplyError(ValueError):
    """The judge's reply was not the JSON we asked for."""


def parse_judge_reply(text: str) -> JudgeScores:
    """Read the judge's JSON reply (a fenced ```json block is tolerated)."""
    body = (text or "").strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        return JudgeScores.model_validate(json.loads(body))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise JudgeReplyError(f"judge reply is not valid scores JSON: {str(exc)[:200]}") from None


def judge_prompt(*, question: str, answer: str, sources: list[dict], facts: list, expect_abstention: bool,
                 history: list[dict] | None = None) -> str:
    lines = []
    if history:
        lines.append("Earlier conversation:")
        lines.extend(f"{h['role']}: {h['content'][:500]}" for h in history)
    lines.append(f"Question: {question}")
    if expect_abstention:
        lines.append("This question is outside the knowledge base: the right answer says it does not know.")
    if facts:
        lines.append("Reference facts a good answer contains: " + "; ".join(
            " / ".join(f) if isinstance(f, list) else f for f in facts))
    if sources:
        lines.append("Sources the tools returned:")
        lines.extend(f"- {s.get('title')} <{s.get('url')}>" for s in sources[:10])
    lines.append("Answer to grade:\n" + answer[:6000])
    return "\n".join(lines)


@dataclass
class Judge:
    """Calls a chat model through the OpenAI client (any OpenAI-compatible base URL works)."""

    client: object  # openai.AsyncOpenAI
    model: str

    async def score(self, **case) -> JudgeScores:
        response = await self.client.chat.completions.create(
            model=self.model,
            temperature=0,
            response_format={"type": "json_object"},
            messages=[{"role": "system", "content": JUDGE_SYSTEM},
                      {"role": "user", "content": judge_prompt(**case)}],
        )
        return parse_judge_reply(response.choices[0].message.content or "")

    async def close(self) -> None:
        await self.client.close()


def open_judge(*, api_key: str | None, base_url: str | None, model: str) -> tuple[Judge | None, str]:
    """(judge, note): no judge and a note saying why when no key is configured."""
    if not api_key:
        return None, "LLM judge skipped: OPENAI_API_KEY is not set (graders without a model still ran)."
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=2, timeout=60)
    where = f" at {base_url}" if base_url else ""
    return Judge(client=client, model=model), f"LLM judge: {model}{where}."
