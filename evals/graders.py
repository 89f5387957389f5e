"""Graders: small pure functions that score one answer (or one tagging) against a case."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

IDK = "i don't know"
_LINK_RE = re.compile(r"\[([^\]\n]*)\]\((https?://[^)\s]+)\)")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"',
                         "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " "})
_MARKUP_RE = re.compile(r"[`*_]+")
_SPACE_RE = re.compile(r"\s+")


def normalise_url(url: str) -> str:
    """Compare URLs loosely: scheme, host case, trailing slash and fragment do not matter."""
    url = url.strip().split("#", 1)[0]
    url = re.sub(r"^https?://", "", url, flags=re.I)
    host, _, path = url.partition("/")
    return f"{host.lower()}/{path}".rstrip("/")


def _ranked(retrieved: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for url in retrieved:
        seen.setdefault(normalise_url(url), None)
    return list(seen)


def hit_at_k(retrieved: list[str], expected: list[str], k: int = 5) -> float:
    """1.0 when any expected source is among the first k retrieved, else 0.0."""
    wanted = {normalise_url(u) for u in expected}
    return 1.0 if wanted & set(_ranked(retrieved)[:k]) else 0.0


def recall_at_k(retrieved: list[str], expected: list[str], k: int = 5) -> float:
    """Share of the expected sources found among the first k retrieved."""
    wanted = {normalise_url(u) for u in expected}
    if not wanted:
        return 0.0
    return len(wanted & set(_ranked(retrieved)[:k])) / len(wanted)


def reciprocal_rank(retrieved: list[str], expected: list[str], k: int | None = None) -> float:
    """1/rank of the first expected source (0.0 when none is retrieved within k)."""
    wanted = {normalise_url(u) for u in expected}
    ranked = _ranked(retrieved)
    for rank, url in enumerate(ranked[:k] if k else ranked, start=1):
        if url in wanted:
            return 1.0 / rank
    return 0.0


def cited_urls(answer: str) -> list[str]:
    """Every URL the answer cites as a Markdown link, in order, without repeats."""
    seen: dict[str, None] = {}
    for _title, url in _LINK_RE.findall(answer or ""):
        seen.setdefault(url.rstrip(".,;"), None)
    return list(seen)


@dataclass
class Grounding:
    cited: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # cited but never returned by a tool

    @property
    def has_citation(self) -> bool:
        return bool(self.cited)

    @property
    def all_in_sources(self) -> bool:
        return not self.outside


def grounding(answer: str, returned_sources: list[str]) -> Grounding:
    """Which cited URLs were among the sources the tools returned during the turn."""
    returned = {normalise_url(u) for u in returned_sources}
    cited = cited_urls(answer)
    return Grounding(cited=cited, outside=[u for u in cited if normalise_url(u) not in returned])


def normalise_text(text: str) -> str:
    """Case, Unicode quotes/dashes, Markdown emphasis/backticks and runs of whitespace ignored."""
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    text = _MARKUP_RE.sub("", text)
    return _SPACE_RE.sub(" ", text).strip().lower()


def fact_present(answer: str, fact: str | list[str]) -> bool:
    """A fact is present when its phrase (or any of its alternatives) occurs in the normalised answer."""
    body = normalise_text(answer)
    options = [fact] if isinstance(fact, str) else fact
    return any(normalise_text(option) in body for option in options)


def facts_score(answer: str, facts: list[str | list[str]]) -> tuple[float, list[str | list[str]]]:
    """(share of expected facts present, the missing ones); no facts scores 1.0."""
    if not facts:
        return 1.0, []
    missing = [fact for fact in facts if not fact_present(answer, fact)]
    return 1.0 - len(missing) / len(facts), missing


_ASKS_CODE = re.compile(r"^\s*(how (do|can|should|would) (i|we|you)|how to|show me|write|give me)\b|"
                        r"\b(example|sample|snippet|code)\b", re.I)
_CSHARP_BLOCK = re.compile(r"^\s*(```|~~~)\s*(csharp|cs|c#)\b", re.I | re.M)


def asks_for_code(question: str) -> bool:
    """A "how do I ..." / "show me" / "example" question: a developer expects code back."""
    return bool(_ASKS_CODE.search(question or ""))


def has_csharp_block(text: str) -> bool:
    return bool(_CSHARP_BLOCK.search(text or ""))


def code_when_asked(question: str, answer: str, top_source_has_code: bool) -> float | None:
    """1 when a code question whose best source has a C# example gets a code block; None when it does not apply."""
    if not asks_for_code(question) or not top_source_has_code or is_abstention(answer):
        return None
    return float("```" in (answer or ""))


def is_abstention(answer: str) -> bool:
    """The answer says "I don't know" (the assistant's wording when nothing relevant was found)."""
    body = normalise_text(answer)
    return IDK in body or "i do not know" in body


def abstention_correct(answer: str, expect_abstention: bool) -> bool:
    """Right when the answer abstains exactly when the case expects it to."""
    return is_abstention(answer) == expect_abstention


def tools_ok(called: list[str], expected: list[str]) -> bool:
    """Every expected tool was called at least once."""
    return set(expected) <= set(called)


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def _prf(tp: int, fp: int, fn: int) -> PRF:
    # Nothing predicted and nothing expected is a perfect answer, not 0/0.
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1)


def tag_scores(predicted: list[str], expected: list[str]) -> PRF:
    """Precision, recall and F1 of one text's predicted tags."""
    p, e = set(predicted), set(expected)
    return _prf(len(p & e), len(p - e), len(e - p))


def micro_tag_scores(pairs: list[tuple[list[str], list[str]]]) -> PRF:
    """Precision, recall and F1 over every (predicted, expected) tag decision of a case set."""
    tp = sum(len(set(p) & set(e)) for p, e in pairs)
    fp = sum(len(set(p) - set(e)) for p, e in pairs)
    fn = sum(len(set(e) - set(p)) for p, e in pairs)
    return _prf(tp, fp, fn)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
