"""Pure functions the offline model uses: which tools to call, and an extractive, cited answer.

The answer is built only from what the tools returned: the best article (read in full through
`read_kb_article` when the offline model could) and the other passages of the search. It leads with
the article's block that shares most with the question (not its framing paragraph), adds the next
best block when that covers words the first did not, then the article's best C# example (and a
second one for a two-part question) with its `dotnet add package` lines for "how do I" questions,
then another article's block only when it covers more of the question. Blocks stay whole (see
`services.agent.answer_blocks`) and each part cites its article's own title and URL, so the model
can never cite a link the tools did not return.
"""

from __future__ import annotations

import re

from services.agent.answer_blocks import HEADING_WEIGHT, Block, Rater, markdown_blocks, passage_blocks
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


MAX_LEAD_CHARS = 900  # the prose that answers; the example and other sources come after it
MIN_GAIN = 0.05  # a second block or example joins when it adds this share of the question's (weighted) words
SECOND_SOURCE = 0.1  # another article is quoted when its best block adds this share of the question's words
SHORT_CODE_LINES = 12  # a short example announced by "...:" stays right after its sentence
INSTALL_LINES = 3  # `dotnet add package` lines shown above the example


def wants_code(question: str) -> bool:
    return bool(re.search(r"\b(how|code|example|sample|snippet|call|write|implement|create|use|set ?up|configure|"
                          r"register|add|build)\b", question, re.I))


def _with_context(block: Block, blocks: list[Block]) -> list[Block]:
    """`block` with what it needs to be read alone: the paragraph it leans on or that announces it ("...:"),
    and the list or table it announces."""
    group = [block]
    before = blocks[block.index - 1] if block.index > 0 else None
    if before is not None and (block.dangling or (block.kind in ("list", "table") and before.kind == "text"
                                                  and before.text.rstrip().endswith(":"))):
        group.insert(0, before)  # "This package replaces ..." after the install command: show the command first
    after = blocks[block.index + 1] if block.index + 1 < len(blocks) else None
    if after is not None and block.text.rstrip().endswith(":") and (
            after.kind in ("list", "table") or (after.kind == "code" and after.text.count("\n") <= SHORT_CODE_LINES)):
        group.append(after)  # "... pass the kernel in:" is followed by what it announces
    return group


def _fit(rater: Rater, block: Block, room: int) -> Block | None:
    """`block` within `room` characters: a long list keeps its items that match the question best, in order."""
    if len(block.text) <= room:
        return block
    if block.kind != "list":
        return None
    items = block.text.split("\n")
    ranked = sorted(range(len(items)), key=lambda i: (-rater.overlap(Block("list", items[i], 0)), i))
    keep, size = [], 0
    for i in ranked:
        if size + len(items[i]) <= room:
            keep.append(i)
            size += len(items[i]) + 1
    if not keep:
        return None
    return Block("list", "\n".join(items[i] for i in sorted(keep)), block.index, block.heading)


def _lead(rater: Rater, blocks: list[Block]) -> list[Block]:
    """The prose that answers: the best-rated block (with its context), then the next best one when it
    covers words of the question the first did not (a question often has two parts); ~MAX_LEAD_CHARS."""
    prose = [b for b in blocks if b.kind in ("text", "list", "table")]
    if not prose:
        return []
    best = min(prose, key=lambda b: (-rater.score(b), b.index))
    out = _with_context(best, blocks)
    covered = frozenset().union(*(rater.covers(b) for b in out))
    rest = [b for b in prose if b not in out and not b.framing]
    runner = min(rest, key=lambda b: (-rater.score(b), b.index), default=None)
    if runner is not None and rater.gain(runner, covered) >= MIN_GAIN:
        out += [b for b in _with_context(runner, blocks) if b not in out]
    kept, size = [], 0
    for block in out:
        fitted = block if block.kind == "code" else _fit(rater, block, MAX_LEAD_CHARS - size)
        if fitted is None:
            if kept:
                break
            fitted = block  # one paragraph is kept whole even when it is long
        kept.append(fitted)
        size += 0 if block.kind == "code" else len(fitted.text)
    return kept


def _install(blocks: list[Block]) -> Block | None:
    """The article's `dotnet add package` lines, as one small shell block: the packages the example needs."""
    lines = [line.split("#")[0].rstrip() for b in blocks if b.kind == "code" and not b.csharp
             for line in b.text.splitlines() if line.strip().startswith("dotnet add package")]
    lines = list(dict.fromkeys(lines))[:INSTALL_LINES]
    return Block("code", "```bash\n" + "\n".join(lines) + "\n```", -1) if lines else None


def _code_for(rater: Rater, blocks: list[Block]) -> list[Block]:
    """The install lines, the C# example that shares most with the question, and a second example when
    it covers words of the question the first one does not ("generate images and transcribe audio")."""
    code = [b for b in blocks if b.csharp] or [b for b in blocks if b.kind == "code"]
    if not code:
        return []

    def rating(b: Block, covered: frozenset[str] = frozenset()) -> float:
        return rater.overlap(b, covered) + HEADING_WEIGHT * rater.heading(b, covered)

    first = min(code, key=lambda b: (-rating(b), b.index))
    covered = rater.covers(first)  # judged among the examples: the prose above them shows no code
    second = min((b for b in code if b is not first), key=lambda b: (-rating(b, covered), b.index), default=None)
    chosen = [first] + ([second] if second is not None and rater.gain(second, covered) >= MIN_GAIN else [])
    install = _install(blocks)
    if install is None or any("dotnet add package" in b.text for b in chosen):
        return sorted(chosen, key=lambda b: b.index)
    return [install, *sorted(chosen, key=lambda b: b.index)]


def _dont_know(results: list[ToolResult]) -> str:
    failed = [tr.tool for tr in results if tr.error]
    note = " (a lookup tool was unavailable just now)" if failed else ""
    return (f"{IDK}: I couldn't find anything about that in the C#/.NET AI sources I can search{note}. "
            "Try rephrasing with the library or API name (for example Microsoft.Extensions.AI, "
            "Semantic Kernel or ML.NET).")


def _link(title: str, url: str) -> str:
    """A Markdown link; brackets in the title ("[OllamaTool] ...") would end its text early, so they go."""
    return f"[{title.replace('[', '').replace(']', '')}]({url})"


def _articles(relevant: list[dict], read: list[dict]) -> list[tuple[str, str, list[Block]]]:
    """(title, url, blocks) per relevant article, best first; an article read in full gives all its blocks."""
    by_url: dict[str, list[dict]] = {}
    for r in sorted(relevant, key=lambda r: -float(r.get("score", 0.0))):
        by_url.setdefault(r["url"], []).append(r)
    full: dict[str, list[dict]] = {}
    for r in read:
        full.setdefault(r["url"], []).append(r)
    return [(chunks[0]["title"], url, passage_blocks(full.get(url) or chunks)) for url, chunks in by_url.items()]


def compose_answer(question: str, results: list[ToolResult], *, min_relevance: float) -> str:
    """A cited Markdown answer from tool results, or an honest "I don't know".

    Tool failures are not repeated here: the stream already shows them as tool output lines.
    """
    kb = [r for tr in results if tr.tool == "search_knowledge_base" for r in tr.results]
    read = [r for tr in results if tr.tool == "read_kb_article" for r in tr.results]
    packages = [r for tr in results if tr.tool.startswith("search_nuget") for r in tr.results]
    others = [r for tr in results if tr.tool not in ("search_knowledge_base", "read_kb_article")
              and not tr.tool.startswith(("search_nuget", "get_nuget")) for r in tr.results]
    relevant = [r for r in kb if float(r.get("score", 0.0)) >= min_relevance]
    plain = terms(question)
    # Package and docs results count only when they share words with the question.
    packages = [p for p in packages if plain & terms(f"{p.get('id', '')} {p.get('title', '')} {p.get('description', '')}")]
    others = [o for o in others if plain & terms(f"{o.get('title', '')} {o.get('content', '')} {o.get('description', '')}")]
    if not relevant and not packages and not others:
        return _dont_know(results)

    articles = _articles(relevant, read)[:3]
    rater = Rater(question)
    parts: list[str] = []
    cited: list[tuple[str, str]] = []
    covered: frozenset[str] = frozenset()
    for title, url, blocks in articles:
        if not cited:
            lead = _lead(rater, blocks)
            code = _code_for(Rater(question, extra=title), blocks) if wants_code(question) else []
            code = [b for b in code if b.text not in {x.text for x in lead}]
        else:  # another article only adds a block that answers a part of the question left open
            prose = [b for b in blocks if b.kind in ("text", "list", "table") and not b.framing and not b.dangling]
            best = min(prose, key=lambda b: (-rater.gain(b, covered), -rater.score(b), b.index), default=None)
            if best is None or len(cited) >= 2 or rater.gain(best, covered) < SECOND_SOURCE:
                continue
            fitted = _fit(rater, best, MAX_LEAD_CHARS)
            lead, code = ([fitted] if fitted else []), []
        if not lead and not code:
            continue
        covered = covered.union(*(rater.covers(b) for b in lead + code))
        if lead:  # the citation closes the last paragraph, never a code fence
            texts = [b.text for b in lead]
            last = max(i for i, b in enumerate(lead) if b.kind != "code")  # the lead starts from prose
            cite = f" ({_link(title, url)})"
            texts[last] = texts[last][:-1] + cite + ":" if texts[last].endswith(":") else texts[last] + cite
            parts.append("\n\n".join(texts))
        if code:
            if not lead:
                parts.append(f"From {_link(title, url)}:")
            parts.append("\n\n".join(b.text for b in code))
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
            blocks = markdown_blocks(str(o.get("content") or o.get("description") or ""))
            prose = [b for b in blocks if b.kind in ("text", "list")]
            best = max(prose, key=rater.score, default=None)
            lines.append(f"- {_link(str(o['title']), o['url'])}" + (f": {best.text[:300]}" if best else ""))
        parts.append("\n".join(lines))
    if not cited and not packages and not others:  # relevant passages, but nothing quotable in them
        return _dont_know(results)
    if cited:
        parts.append("Sources:\n" + "\n".join(f"- {_link(t, u)}" for t, u in cited))
    return "\n\n".join(parts)
