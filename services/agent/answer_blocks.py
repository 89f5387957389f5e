"""Reading passages as Markdown blocks and rating each block against the question.

Blocks are paragraphs (hard wraps joined), whole lists, tables and whole fenced code blocks (an example
that chunking cut in two is joined again), each with the heading it sits under. A block's rating is the
weighted share of the question's words found in it and in its heading (API-looking identifiers count
double, word forms are folded), plus a little for naming APIs at all. An article's framing ("This
article answers ...", "It summarises the ... page") is rated down hard and its opening paragraph a
little: they introduce the topic rather than answer. Weights were chosen on the shipped eval cases;
passage relevance (chunk cosine) and IDF weighting were measured too and did not pay.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9#+.\-_]*[A-Za-z0-9#+]|[A-Za-z]")
# English function words (NLTK's list, as bm25s ships it) and words that say nothing about an API.
STOPWORDS = frozenset(
    "a about above after again against all also am an and any are as at be because been before being below "
    "between both but by can could d did do does doing down during each etc few for from further get got had "
    "has have having he her here hers him his how i if in into is it its itself just let lets like ll m make "
    "me more most my need no nor not now o of off on once one only or other our ours out over own please re "
    "s same she should so some something such t tell than that the their theirs them then there these they "
    "thing things this those through to too under until up use used using ve very want was way ways we were "
    "what when where which while who whom why will with would y you your yours c# .net net dotnet show "
    "explain".split()
)
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RE = re.compile(r"^\s*\|")
_CSHARP_RE = re.compile(r"^\s*(```|~~~)\s*(csharp|cs|c#)\b", re.I)
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# A block that opens with one of these leans on the text before it ("This lets you...").
_DANGLING = frozenset("this that these those it its they them their such here there both either another "
                      "also however instead then otherwise likewise which".split())
# An article's framing: it talks about the article or the page it summarises, not about the API.
_SOURCE = r"(this|the) (\S+ ){0,2}(article|page|post|guide|quickstart|tutorial|readme|how-to|section|sample)\b"
_FRAMING_RE = re.compile(
    rf"^{_SOURCE}|\b{_SOURCE}[^.]{{0,60}}\b(answer|summari[sz]|cover|describ|explain|show|walk|contrast|document|"
    r"introduc|demonstrat)\w*\b|\bIt summari[sz]es\b|\bsummari[sz]es the\b", re.I)
FRAMING_FACTOR = 0.35  # a framing paragraph leads only when nothing else shares words with the question
INTRO_FACTOR = 0.7  # the opening paragraph introduces the topic more often than it answers
HEADING_WEIGHT = 1.0  # "## Writing your own middleware" says what the blocks under it answer
API_WEIGHT = 0.2  # a block that names two or more APIs gets this much: developers want the concrete names
API_CAP = 2


@dataclass(eq=False)  # compared and hashed by identity: the same text may occur twice
class Block:
    kind: str  # "text" | "list" | "code" | "table"
    text: str
    index: int
    heading: str = ""  # the innermost heading above the block (below the article's title)
    intro: bool = False  # the opening paragraph of an article read in full

    @property
    def dangling(self) -> bool:
        first = re.match(r"[A-Za-z']+", self.text.lstrip("*_`>"))
        return bool(first) and first.group(0).lower() in _DANGLING

    @property
    def framing(self) -> bool:
        return bool(_FRAMING_RE.search(self.text))

    @property
    def apis(self) -> set[str]:
        """The API names the block mentions (`code spans` and CamelCase or dotted identifiers)."""
        return {w for w in WORD_RE.findall(self.text) if identifier(w)} | set(re.findall(r"`([^`\n]+)`", self.text))

    @property
    def csharp(self) -> bool:
        return self.kind == "code" and bool(_CSHARP_RE.match(self.text))


def stem(word: str) -> str:
    """A crude English stem, enough to match "logging" with "log", "provides" with "provide"."""
    word = word.lower().strip(".-_")
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def terms(text: str) -> set[str]:
    """Lower-cased content words of `text` (stopwords dropped)."""
    return {w.lower().strip(".") for w in WORD_RE.findall(text)} - STOPWORDS


@functools.lru_cache(maxsize=4096)
def features(text: str) -> frozenset[str]:
    """What a block is matched on: stems of its words, and of the parts of CamelCase/dotted identifiers."""
    out: set[str] = set()
    for word in WORD_RE.findall(text):
        low = word.lower().strip(".")
        if low in STOPWORDS:
            continue
        out.add(stem(low))
        parts = [p for p in re.split(r"[._\-]", word) for p in _CAMEL_RE.findall(p)]
        if len(parts) > 1:
            out.update(stem(p) for p in parts if p.lower() not in STOPWORDS and len(p) > 2)
    return frozenset(out)


def identifier(word: str) -> bool:
    """API-looking words (IChatClient, Microsoft.Extensions.AI, num_ctx) say more than plain ones."""
    return bool(re.search(r"[a-z][A-Z]|\w\.\w|_|\d", word))


def markdown_blocks(markdown: str, heading: str = "") -> list[Block]:
    """Paragraphs (hard wraps joined), whole lists, tables and whole fenced code blocks; headings are kept
    as each block's `heading`, not as blocks."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    in_list = False  # the last block is a list that a following item (even after a blank line) continues

    def add(kind: str, text: str) -> None:
        if text.strip():
            blocks.append(Block(kind, text.strip(), len(blocks), heading))

    fences = [k for k, line in enumerate(lines) if _FENCE_RE.match(line)]
    if len(fences) % 2 and lines[fences[0]].strip() in ("```", "~~~") and fences[0] > 0:
        # a passage cut out of a long example starts inside it: its first lines are code, not prose
        lines = [lines[fences[0]].strip()] + lines
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_RE.match(line)
        if not line.strip():
            i += 1
            continue
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence.group(1)):
                j += 1
            code = lines[i:j + 1] if j < len(lines) else [*lines[i:], fence.group(1)]  # close a cut-off example
            add("code", "\n".join(code))
            i, in_list = j + 1, False
            continue
        if line.lstrip().startswith("#"):
            heading = line.strip().lstrip("#").strip()
            i, in_list = i + 1, False
            continue
        if _TABLE_RE.match(line):
            j = i
            while j < len(lines) and _TABLE_RE.match(lines[j]):
                j += 1
            add("table", "\n".join(lines[i:j]))
            i, in_list = j, False
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
        if kind == "list" and in_list:
            blocks[-1].text += "\n" + " ".join(parts)
        else:
            add(kind, " ".join(parts))
        i, in_list = j, kind == "list"
    return blocks


def _rejoin(passages: list[dict]) -> list[dict]:
    """Consecutive passages of one article that split a long example between them, read as one passage."""
    out: list[dict] = []
    for passage in passages:
        previous = out[-1] if out else None
        if (previous is not None and "chunk" in passage and passage.get("chunk") == previous.get("last_chunk", -2) + 1
                and sum(bool(_FENCE_RE.match(x)) for x in previous["content"].splitlines()) % 2):
            previous["content"] += "\n" + (passage.get("content") or "")
            previous["last_chunk"] = passage["chunk"]
            continue
        out.append({**passage, "last_chunk": passage.get("chunk", -2)})
    return out


def passage_blocks(passages: list[dict]) -> list[Block]:
    """The blocks of one article's passages in article order, each once (neighbouring chunks overlap)."""
    ordered = sorted(passages, key=lambda p: p.get("chunk", 0)) if all("chunk" in p for p in passages) else passages
    blocks: list[Block] = []
    seen: set[str] = set()
    for passage in _rejoin(ordered):
        section = str(passage.get("section") or "")
        heading = section.split(" > ")[-1] if " > " in section else ""  # the first part is the article's title
        for block in markdown_blocks(passage.get("content") or "", heading):
            if block.text in seen:
                continue
            seen.add(block.text)
            block.index = len(blocks)
            block.intro = block.index == 0 and passage.get("chunk") == 0
            blocks.append(block)
    return blocks


class Rater:
    """Rates blocks against one question: the weighted share of its words a block (and its heading) holds."""

    def __init__(self, question: str, extra: str = "") -> None:
        self.weights: dict[str, float] = {}
        for word in WORD_RE.findall(question):
            if word.lower().strip(".") not in STOPWORDS:
                key = stem(word)
                self.weights[key] = max(self.weights.get(key, 0.0), 2.0 if identifier(word) else 1.0)
        for word in terms(extra):  # e.g. the article's title: a weak hint for choosing its example
            self.weights.setdefault(stem(word), 0.1)
        self.total = sum(self.weights.values()) or 1.0

    def covers(self, block: Block) -> frozenset[str]:
        """The question's words that the block (or its heading) contains."""
        return frozenset(self.weights.keys() & (features(block.text) | features(block.heading)))

    def gain(self, block: Block, covered: frozenset[str]) -> float:
        """The weighted share of the question's words the block adds to those already `covered`."""
        return sum(self.weights[key] for key in self.covers(block) - covered) / self.total

    def _share(self, text: str, covered: frozenset[str]) -> float:
        found = features(text)
        return sum(w for key, w in self.weights.items() if key in found and key not in covered) / self.total

    def overlap(self, block: Block, covered: frozenset[str] = frozenset()) -> float:
        """The weighted share of the question's words (not yet `covered`) in the block's text."""
        return self._share(block.text, covered)

    def heading(self, block: Block, covered: frozenset[str] = frozenset()) -> float:
        """The same share in the heading the block sits under."""
        return self._share(block.heading, covered)

    def score(self, block: Block) -> float:
        """How well the block answers the question."""
        value = (self.overlap(block) + HEADING_WEIGHT * self.heading(block)
                 + API_WEIGHT * min(len(block.apis), API_CAP) / API_CAP)
        return value * (FRAMING_FACTOR if block.framing else INTRO_FACTOR if block.intro else 1.0)
