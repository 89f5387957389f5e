"""Knowledge-base articles: front-matter parsing, tag normalisation and heading/code-aware chunking."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter

DEFAULT_KB_DIR = Path(__file__).resolve().parents[2] / "data" / "kb"
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_FENCE_RE = re.compile(r"^(```|~~~)")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*)$")


class ArticleError(ValueError):
    """An article file cannot be used (message names the file and the problem)."""


@dataclass
class Article:
    doc_id: str
    title: str
    source_url: str
    body: str
    ai_libraries: list[str] = field(default_factory=list)
    ai_providers: list[str] = field(default_factory=list)
    dotnet_versions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    verified: dt.date | None = None  # when a maintainer last checked it against the library's current docs/source
    applies_to: str = ""  # the package / .NET versions it was checked against

    @property
    def tags(self) -> list[str]:
        seen: dict[str, None] = {}
        for tag in [*self.ai_libraries, *self.ai_providers, *self.dotnet_versions, *self.keywords]:
            seen.setdefault(tag, None)
        return list(seen)

    @property
    def content_hash(self) -> str:
        payload = "\n".join([self.title, self.source_url, "|".join(self.tags), self.body,
                             self.verified.isoformat() if self.verified else "", self.applies_to])
        return hashlib.sha256(payload.encode()).hexdigest()


def count_tokens(text: str) -> int:
    """Word-piece-ish count (words and punctuation), close to BERT's pre-tokenisation."""
    return len(_TOKEN_RE.findall(text))


def normalise_key(value: str) -> str:
    """Loose key for matching filter values: case, spaces and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", value.lower())


def normalise_dotnet(value: str) -> str:
    """'8', 'net8.0', '.NET 8' all become '.NET 8'; other text is returned trimmed."""
    match = re.search(r"(\d+)", value)
    return f".NET {match.group(1)}" if match else value.strip()


def _split_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        items = str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def parse_article(text: str, *, doc_id: str) -> Article:
    """Parse one Markdown article with front matter (title, source_url, ai_library, ...)."""
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # YAML errors come in many types
        raise ArticleError(f"{doc_id}: front matter is not valid ({type(exc).__name__})") from None
    meta = post.metadata
    title = str(meta.get("title") or "").strip()
    source_url = str(meta.get("source_url") or meta.get("url") or "").strip()
    if not title:
        heading = next((m.group(2) for m in map(_HEADING_RE.match, post.content.splitlines()) if m), "")
        title = heading.strip()
    if not title:
        raise ArticleError(f"{doc_id}: no title (front matter 'title' or a '#' heading)")
    if not source_url.startswith(("http://", "https://")):
        raise ArticleError(f"{doc_id}: 'source_url' must be an http(s) URL")
    if not post.content.strip():
        raise ArticleError(f"{doc_id}: the article has no body")
    return Article(
        doc_id=doc_id,
        title=title,
        source_url=source_url,
        body=post.content.strip(),
        ai_libraries=_split_list(meta.get("ai_library")),
        ai_providers=_split_list(meta.get("ai_provider")),
        dotnet_versions=[normalise_dotnet(v) for v in _split_list(meta.get("dotnet_version"))],
        keywords=_split_list(meta.get("tags")),
        verified=_date(meta.get("verified"), doc_id),
        applies_to=str(meta.get("applies_to") or "").strip(),
    )


def _date(value: object, doc_id: str) -> dt.date | None:
    """`verified: YYYY-MM-DD` (YAML may already have parsed it into a date)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ArticleError(f"{doc_id}: 'verified' must be a date like 2026-11-30") from None


def load_articles(folder: Path = DEFAULT_KB_DIR) -> tuple[list[Article], list[str]]:
    """Every `*.md` article under `folder`; returns (articles, problems) so bad files are skipped."""
    articles, problems = [], []
    for path in sorted(folder.rglob("*.md")):
        doc_id = path.relative_to(folder).with_suffix("").as_posix()
        try:
            articles.append(parse_article(path.read_text(encoding="utf-8"), doc_id=doc_id))
        except (ArticleError, UnicodeDecodeError) as exc:
            problems.append(str(exc) if isinstance(exc, ArticleError) else f"{doc_id}: not UTF-8 text")
    return articles, problems


def _blocks(body: str) -> list[tuple[str, str, list[str]]]:
    """Split Markdown into (kind, text, heading path) blocks; fenced code stays whole."""
    blocks: list[tuple[str, str, list[str]]] = []
    levels: list[tuple[int, str]] = []  # the open headings, outermost first
    para: list[str] = []
    lines = body.splitlines()
    i = 0

    def flush() -> None:
        if any(line.strip() for line in para):
            blocks.append(("text", "\n".join(para).strip(), [h for _, h in levels]))
        para.clear()

    while i < len(lines):
        line = lines[i]
        heading = _HEADING_RE.match(line)
        if _FENCE_RE.match(line.strip()):
            flush()
            fence = line.strip()[:3]
            code = [line]
            i += 1
            while i < len(lines):
                code.append(lines[i])
                if lines[i].strip().startswith(fence):
                    break
                i += 1
            blocks.append(("code", "\n".join(code), [h for _, h in levels]))
        elif heading:
            flush()
            level = len(heading.group(1))
            while levels and levels[-1][0] >= level:
                levels.pop()
            levels.append((level, heading.group(2).strip()))
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


def _split_oversized(text: str, max_tokens: int) -> list[str]:
    """Split one block that alone exceeds the budget, by lines then by words."""
    pieces, current = [], []
    for line in text.splitlines():
        words = line.split(" ")
        if count_tokens(line) > max_tokens:
            for word in words:
                if current and count_tokens(" ".join(current + [word])) > max_tokens:
                    pieces.append(" ".join(current))
                    current = []
                current.append(word)
            continue
        if current and count_tokens("\n".join(current + [line])) > max_tokens:
            pieces.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        pieces.append("\n".join(current))
    return pieces


def chunk_markdown(body: str, *, max_tokens: int = 200, overlap_tokens: int = 40) -> list[dict]:
    """Chunks of at most ~max_tokens that break at headings/paragraphs, never inside code.

    Each chunk is {"content", "section"}; consecutive chunks in a section share up to
    `overlap_tokens` of trailing text so a sentence cut at a boundary stays retrievable.
    """
    chunks: list[dict] = []
    current: list[str] = []
    section: list[str] = []

    def emit() -> None:
        if current:
            chunks.append({"content": "\n\n".join(current).strip(), "section": " > ".join(section)})

    for kind, text, path in _blocks(body):
        parts = _split_oversized(text, max_tokens) if count_tokens(text) > max_tokens else [text]
        for part in parts:
            if path != section:
                emit()
                current, section = [], path
            if current and count_tokens("\n\n".join(current + [part])) > max_tokens:
                emit()
                tail = current[-1]
                keep = kind != "code" and not tail.startswith(("```", "~~~")) and count_tokens(tail) <= overlap_tokens
                current = [tail] if keep else []
            current.append(part)
    emit()
    return [c for c in chunks if c["content"]]
