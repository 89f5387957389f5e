"""Pure functions the offline model uses: which tools to call, and an extractive, cited answer.

The answer is built only from what the tools returned. Passages are read as Markdown blocks
(paragraphs with hard wraps joined, list items, whole code blocks); the answer leads with the
block of the best passage that shares most with the question, keeps blocks whole, adds that
article's C# example for "how do I" questions, and cites each part with the passage's own title
and URL, so the model can never cite a link the tools did not return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.agent.tool_results import ToolResult

IDK = "I don't know"
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9#+.\-]*[A-Za-z0-9#+]|[A-Za-z]")
_PACKAGE_RE = re.compile(
    r"\b(nuget|packages?|install|dotnet add|version of)\b|"
    r"\b(?:Microsoft|Azure|OpenAI|Semantic|System)\.[A-Z][\w.]*|\b[\w]+\.SemanticKernel[\w.]*",
    re.I,
)
_PACKAGE_ID_RE = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*\.)+[A-Z][A-Za-z0-9]*\b")
STOPWORDS = frozenset(
    "a an and are as at be by can could do does for from get how i if in into is it its me my of on or "
    "should so that the their then there these this to use using was what when where which while who why "
    "will with would you your about any some please tell show explain want need c# .net net dotnet".split()
)
_FOLLOW_UP_RE = re.compile(r"\b(it|that|this|those|them|its|same|more)\b", re.I)


def terms(text: str) -> set[str]:
    """Lower-cased content words of `text` (stopwords dropped)."""
    return {w.lower().strip(".") for w in _WORD_RE.findall(text)} - STOPWORDS


def looks_like_package_question(text: str) -> bool:
    return bool(_PACKAGE_RE.search(text))


def package_query(text: str) -> str:
    """A NuGet search query: the package id when one is named, else the question's content words."""
    ids = _PACKAGE_ID_RE.findall(text)
    if ids:
        return max(ids, key=len)
    words = [w for w in _WORD_RE.findall(text) if w.lower() not in STOPWORDS | {"nuget", "package", "packages", "install", "latest", "version"}]
    return " ".join(words[:6]) or text[:80]


def retrieval_query(message: str, previous_user_messages: list[str]) -> str:
    """The question to search for; short follow-ups borrow the previous question's subject."""
    if previous_user_messages and (len(message.split()) < 7 or _FOLLOW_UP_RE.search(message)):
        return f"{previous_user_messages[-1]} {message}"
    return message


_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RE = re.compile(r"^\s*\|")
# A block that opens with one of these leans on the text before it ("This lets you...").
_DANGLING = frozenset("this that these those it its they them their such here there both either another "
                      "also however instead then otherwise likewise which".split())
MAX_LEAD_CHARS = 900


@dataclass
class Block:
    kind: str  # "text" | "list" | "code" | "table"
    text: str
    index: int

    @property
    def dangling(self) -> bool:
        first = re.match(r"[A-Za-z']+", self.text.lstrip("*_`>"))
        return bool(first) and first.group(0).lower() in _DANGLING


def markdown_blocks(markdown: str) -> list[Block]:
    """Paragraphs (hard wraps joined), list items, tables and whole fenced code blocks; headings dropped."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0

    def add(kind: str, text: str) -> None:
        if text.strip():
            blocks.append(Block(kind, text.strip(), len(blocks)))

    while i < len(lines):
        line = lines[i]
        if _FENCE_RE.match(line):
            fence = _FENCE_RE.match(line).group(1)
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence):
                j += 1
            add("code", "\n".join(lines[i:j + 1]))
            i = j + 1
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        if _TABLE_RE.match(line):
            j = i
            while j < len(lines) and _TABLE_RE.match(lines[j]):
                j += 1
            add("table", "\n".join(lines[i:j]))
            i = j
            continue
        kind = "list" if _LIST_RE.match(line) else "text"
        parts = [line.strip()]
        j = i + 1
        while j < len(lines):
            nxt = lines[j]
            if (not nxt.strip() or nxt.lstrip().startswith("#") or _FENCE_RE.match(nxt) or _TABLE_RE.match(nxt)
                    or _LIST_RE.match(nxt)):
                break
            parts.append(nxt.strip())
            j += 1
        add(kind, " ".join(parts))
        i = j
    return blocks


def _weight(word: str) -> float:
    # API-looking words (IChatClient, Microsoft.Extensions.AI, num_ctx) say more than plain ones.
    return 2.0 if re.search(r"[a-z][A-Z]|\.|_|\d", word) else 1.0


def _overlap(wanted: dict[str, float], text: str) -> float:
    return sum(wanted[w] for w in terms(text) & wanted.keys())


def best_sentences(question: str, content: str, limit: int = 1) -> list[str]:
    """Up to `limit` prose blocks of `content` that share most with the question, in document order."""
    wanted = {w: 1.0 for w in terms(question)}
    prose = [b for b in markdown_blocks(content) if b.kind in ("text", "list")]
    ranked = sorted(prose, key=lambda b: (-_overlap(wanted, b.text), b.index))[:limit]
    keep = [b for b in ranked if _overlap(wanted, b.text) > 0] or ranked[:1]
    return [b.text for b in sorted(keep, key=lambda b: b.index)]


def first_code_block(content: str) -> str | None:
    """The first C# block, else the first code block of any language."""
    blocks = [b.text for b in markdown_blocks(content) if b.kind == "code"]
    csharp = [b for b in blocks if re.match(r"```(csharp|cs|c#)\b", b, re.I)]
    return (csharp or blocks or [None])[0]


def wants_code(question: str) -> bool:
    return bool(re.search(r"\b(how|code|example|sample|snippet|call|write|implement|create|use|set ?up|configure|"
                          r"register|add|build)\b", question, re.I))


def _lead(question: str, blocks: list[Block], wanted: dict[str, float]) -> list[Block]:
    """The prose that answers: the best-matching block, with the one before it when it leans on it."""
    prose = [b for b in blocks if b.kind in ("text", "list", "table")]
    if not prose:
        return []
    scored = sorted(prose, key=lambda b: (-_overlap(wanted, b.text), b.index))
    best = scored[0]
    if _overlap(wanted, best.text) <= 0:
        best = prose[0]
    chosen = [best]
    runner_up = next((b for b in scored[1:] if _overlap(wanted, b.text) >= 2 and not b.dangling), None)
    if runner_up is not None and _overlap(wanted, best.text) > 0:
        chosen.append(runner_up)
    before = [b for b in prose if b.index < best.index]
    if best.dangling and before:
        chosen.insert(0, before[-1])
    # a list item rarely stands alone: keep its neighbours of the same list
    if best.kind == "list":
        chosen = [b for b in prose if b.kind == "list" and abs(b.index - best.index) <= 3] or chosen
    # "... two main operations:" announces what follows: bring the list (or table) it introduces
    for block in list(chosen):
        if block.text.rstrip().endswith(":"):
            following = [b for b in blocks if b.index > block.index]
            for nxt in following:
                if nxt.kind not in ("list", "table") or nxt in chosen:
                    break
                chosen.append(nxt)
    out, size = [], 0
    for block in sorted(chosen, key=lambda b: b.index):
        if size and size + len(block.text) > MAX_LEAD_CHARS:
            break
        out.append(block)
        size += len(block.text)
    return out


def _code_for(question: str, blocks: list[Block], wanted: dict[str, float]) -> str | None:
    """The C# example that shares most with the question (and the article's title); a very short one
    (a `dotnet add package` line, a constructor) gets the next best example after it."""
    code = [b for b in blocks if b.kind == "code"]
    if not code:
        return None
    csharp = [b for b in code if re.match(r"\s*(```|~~~)\s*(csharp|cs|c#)\b", b.text, re.I)] or code
    ranked = sorted(csharp, key=lambda b: (-_overlap(wanted, b.text), b.index))
    chosen = ranked[:1]
    if len(ranked) > 1 and ranked[0].text.count("\n") < 6 and _overlap(wanted, ranked[1].text) > 0:
        chosen.append(ranked[1])
    return "\n\n".join(b.text for b in sorted(chosen, key=lambda b: b.index))


def _dont_know(results: list[ToolResult]) -> str:
    failed = [tr.tool for tr in results if tr.error]
    note = " (a lookup tool was unavailable just now)" if failed else ""
    return (f"{IDK}: I couldn't find anything about that in the C#/.NET AI sources I can search{note}. "
            "Try rephrasing with the library or API name (for example Microsoft.Extensions.AI, "
            "Semantic Kernel or ML.NET).")


def compose_answer(question: str, results: list[ToolResult], *, min_relevance: float) -> str:
    """A cited Markdown answer from tool results, or an honest "I don't know".

    Tool failures are not repeated here: the stream already shows them as tool output lines.
    """
    kb = [r for tr in results if tr.tool == "search_knowledge_base" for r in tr.results]
    packages = [r for tr in results if tr.tool.startswith("search_nuget") for r in tr.results]
    others = [r for tr in results if tr.tool not in ("search_knowledge_base",)
              and not tr.tool.startswith(("search_nuget", "get_nuget")) for r in tr.results]
    relevant = [r for r in kb if float(r.get("score", 0.0)) >= min_relevance]
    plain = terms(question)
    wanted = {w: _weight(w) for w in plain}
    # Package and docs results count only when they share words with the question.
    packages = [p for p in packages if plain & terms(f"{p.get('id', '')} {p.get('title', '')} {p.get('description', '')}")]
    others = [o for o in others if plain & terms(f"{o.get('title', '')} {o.get('content', '')} {o.get('description', '')}")]
    if not relevant and not packages and not others:
        return _dont_know(results)

    by_url: dict[str, list[dict]] = {}
    for r in sorted(relevant, key=lambda r: -float(r.get("score", 0.0))):
        by_url.setdefault(r["url"], []).append(r)
    parts: list[str] = []
    cited: list[tuple[str, str]] = []
    need_code = wants_code(question)
    for url, chunks in list(by_url.items())[:2]:
        title = chunks[0]["title"]
        blocks = markdown_blocks("\n\n".join(c.get("content", "") for c in chunks))
        if cited:  # a second source only when it adds a block that clearly matches the question
            lead = _lead(question, blocks, wanted)[-1:]
            if not lead or _overlap(wanted, lead[0].text) < 2 or lead[0].dangling:
                continue
        else:
            lead = _lead(question, blocks, wanted)
        title_terms = {w: 1.0 for w in terms(title)}
        code = (_code_for(question, blocks, {**title_terms, **wanted})
                if need_code and not any("```" in p for p in parts) else None)
        if not lead and not code:
            continue
        if lead:
            prose = "\n\n".join(b.text for b in lead)
            parts.append(f"{prose} ([{title}]({url}))")
        if code:
            if not lead:
                parts.append(f"From [{title}]({url}):")
            parts.append(code)
        cited.append((title, url))

    if packages:
        lines = ["Relevant NuGet packages:"]
        for p in packages[:5]:
            detail = ", ".join(x for x in [f"latest {p['version']}" if p.get("version") else "",
                                            f"{int(p['downloads']):,} downloads" if p.get("downloads") else "",
                                            "verified owner" if p.get("verified") else ""] if x)
            lines.append(f"- [{p.get('id') or p['title']}]({p['url']})" + (f" — {detail}" if detail else ""))
        parts.append("\n".join(lines))
    if others:
        lines = ["From the documentation tools:"]
        for o in others[:3]:
            snippet = best_sentences(question, str(o.get("content") or o.get("description") or ""), limit=1)
            lines.append(f"- [{o['title']}]({o['url']})" + (f": {snippet[0][:300]}" if snippet else ""))
        parts.append("\n".join(lines))
    if not cited and not packages and not others:  # relevant passages, but nothing quotable in them
        return _dont_know(results)
    if cited:
        parts.append("Sources:\n" + "\n".join(f"- [{t}]({u})" for t, u in cited))
    return "\n\n".join(parts)
