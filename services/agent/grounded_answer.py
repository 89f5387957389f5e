"""Pure functions the offline model uses: which tools to call, and an extractive, cited answer.

The answer is built only from what the tools returned: sentences are picked from the retrieved
passages by overlap with the question, and each is cited with the passage's own title and URL,
so the model can never cite a link the tools did not return.
"""

from __future__ import annotations

import re

from services.agent.tool_results import ToolResult

IDK = "I don't know"
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9#+.\-]*[A-Za-z0-9#+]|[A-Za-z]")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\[(*])")
_CODE_RE = re.compile(r"```[\w#+-]*\n.*?```", re.S)
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


def _sentences(text: str) -> list[str]:
    prose = _CODE_RE.sub(" ", text)
    lines = [ln.strip() for ln in prose.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    out: list[str] = []
    for line in lines:
        line = re.sub(r"^[-*]\s+|^\d+\.\s+", "", line)
        out.extend(s.strip() for s in _SENTENCE_RE.split(line) if len(s.strip()) > 25)
    return out


def best_sentences(question: str, content: str, limit: int = 3) -> list[str]:
    """Up to `limit` sentences of `content` that share most words with the question, in order."""
    wanted = terms(question)
    sentences = _sentences(content)
    scored = [(len(terms(s) & wanted), -i, s) for i, s in enumerate(sentences)]
    top = sorted(scored, reverse=True)[:limit]
    keep = {s for score, _, s in top if score > 0} or {sentences[0]} if sentences else set()
    return [s for s in sentences if s in keep]


def first_code_block(content: str) -> str | None:
    """The first C# block, else the first code block of any language."""
    blocks = [m.group(0) for m in _CODE_RE.finditer(content)]
    csharp = [b for b in blocks if re.match(r"```(csharp|cs|c#)\b", b, re.I)]
    return (csharp or blocks or [None])[0]


def wants_code(question: str) -> bool:
    return bool(re.search(r"\b(how|code|example|sample|snippet|call|write|implement|create|use)\b", question, re.I))


def _dont_know(results: list[ToolResult], notes: list[str]) -> str:
    failed = [tr.tool for tr in results if tr.error]
    note = " (a lookup tool was unavailable just now)" if failed else ""
    return (f"{IDK}: I couldn't find anything about that in the C#/.NET AI sources I can search{note}. "
            "Try rephrasing with the library or API name (for example Microsoft.Extensions.AI, "
            "Semantic Kernel or ML.NET)." + "".join(f"\n\n{n}" for n in notes))


def compose_answer(question: str, results: list[ToolResult], *, min_relevance: float) -> str:
    """A cited Markdown answer from tool results, or an honest "I don't know"."""
    kb = [r for tr in results if tr.tool == "search_knowledge_base" for r in tr.results]
    packages = [r for tr in results if tr.tool.startswith("search_nuget") for r in tr.results]
    others = [r for tr in results if tr.tool not in ("search_knowledge_base",) and not tr.tool.startswith(("search_nuget", "get_nuget")) for r in tr.results]
    relevant = [r for r in kb if float(r.get("score", 0.0)) >= min_relevance]
    wanted = terms(question)
    # Package and docs results count only when they share words with the question.
    packages = [p for p in packages if wanted & terms(f"{p.get('id', '')} {p.get('title', '')} {p.get('description', '')}")]
    others = [o for o in others if wanted & terms(f"{o.get('title', '')} {o.get('content', '')} {o.get('description', '')}")]
    # Our NuGet tools' error texts are written for people (no URLs or internals), so they are shown as is.
    nuget_notes = list(dict.fromkeys(tr.error for tr in results if tr.error and tr.tool.startswith(("search_nuget", "get_nuget"))))
    if not relevant and not packages and not others:
        return _dont_know(results, nuget_notes)

    parts: list[str] = []
    cited: list[tuple[str, str]] = []
    by_url: dict[str, list[dict]] = {}
    for r in sorted(relevant, key=lambda r: -float(r.get("score", 0.0))):
        by_url.setdefault(r["url"], []).append(r)
    for url, chunks in list(by_url.items())[:3]:
        title = chunks[0]["title"]
        content = "\n\n".join(c.get("content", "") for c in chunks)
        sentences = best_sentences(question, content, limit=2 if cited else 3)
        code = first_code_block(content) if not cited and wants_code(question) else None
        if not sentences and not code:  # nothing quotable (e.g. a passage that is only a heading)
            continue
        lead = "Here is what I found. " if not cited else ""
        parts.append(f"{lead}{' '.join(sentences)} ([{title}]({url}))")
        if code:
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
            lines.append(f"- [{o['title']}]({o['url']})" + (f": {snippet[0]}" if snippet else ""))
        parts.append("\n".join(lines))
    if not cited and not packages and not others:  # relevant passages, but nothing quotable in them
        return _dont_know(results, nuget_notes)
    parts.extend(nuget_notes)
    if cited:
        parts.append("Sources:\n" + "\n".join(f"- [{t}]({u})" for t, u in cited))
    return "\n\n".join(parts)
