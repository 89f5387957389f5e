"""Reading what operators ingest: Markdown/HTML folders, URL lists, RSS/Atom feeds, sample files.

Everything here turns input into records and reports problems per input; writing is the
caller's job (services/cli.py). HTML is turned into Markdown-ish text with the stdlib parser so
the knowledge-base chunker still sees headings and code blocks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

from services.core.urls import http_url
from services.retrieval.corpus import Article, ArticleError, parse_article
from services.content.samples import SampleError, validate_sample

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
MAX_FETCH_BYTES = 5 * 1024 * 1024
NEWS_SUMMARY_CHARS = 400


class SourceError(ValueError):
    """An input cannot be used (the message names it and says why)."""


# --- HTML → Markdown-ish text ---------------------------------------------------------------------

_SKIP = {"script", "style", "noscript", "nav", "footer", "svg", "template", "form", "iframe", "button"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "ul", "ol", "table", "tr", "blockquote", "br",
          "hr", "dl", "dt", "dd", "figure", "figcaption", "aside"}


class _HtmlConverter(HTMLParser):
    def __init__(self, *, markdown: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.markdown = markdown
        self.out: list[str] = []
        self.title = ""
        self.canonical = ""
        self._skip = 0
        self._pre = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag in _SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "link" and "canonical" in attr.get("rel", "").lower().split():
            self.canonical = self.canonical or attr.get("href", "").strip()
        elif tag == "meta" and attr.get("property", "").lower() == "og:url":
            self.canonical = self.canonical or attr.get("content", "").strip()
        elif self._skip:
            return
        elif tag == "pre":
            self._pre += 1
            self.out.append("\n\n```\n" if self.markdown else "\n\n")
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + ("#" * int(tag[1]) + " " if self.markdown else ""))
        elif tag == "li":
            self.out.append("\n- " if self.markdown else "\n")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "code" and not self._pre and self.markdown:
            self.out.append("`")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif self._skip:
            return
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self.out.append("\n```\n\n" if self.markdown else "\n\n")
        elif re.fullmatch(r"h[1-6]", tag) or tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "code" and not self._pre and self.markdown:
            self.out.append("`")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip:
            return
        elif self._pre:
            self.out.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines, in_code = [], False
        for line in "".join(self.out).splitlines():
            if line.strip() == "```":
                in_code = not in_code
            lines.append(line.rstrip() if in_code else line.strip())  # code keeps its indentation
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@dataclass
class HtmlPage:
    title: str
    canonical_url: str
    body: str


def html_to_markdown(html: str) -> HtmlPage:
    """Markdown-ish text of an HTML page (headings, lists, fenced code), its title and canonical URL."""
    parser = _HtmlConverter(markdown=True)
    parser.feed(html)
    parser.close()
    body = parser.text()
    title = re.sub(r"\s+", " ", parser.title).strip()
    if not title:
        heading = re.search(r"^#{1,6} (.+)$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else ""
    return HtmlPage(title=title, canonical_url=parser.canonical, body=body)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (a feed summary or content)."""
    parser = _HtmlConverter(markdown=False)
    parser.feed(html)
    parser.close()
    return parser.text()


# --- knowledge-base inputs ------------------------------------------------------------------------


def article_from_html(html: str, *, doc_id: str, url: str | None = None) -> Article:
    page = html_to_markdown(html)
    source_url = url or page.canonical_url
    if not source_url.startswith(("http://", "https://")):
        raise ArticleError(f"{doc_id}: no http(s) address (<link rel=\"canonical\"> or og:url); citations need one")
    if not page.title:
        raise ArticleError(f"{doc_id}: no <title> or heading")
    if not page.body.strip():
        raise ArticleError(f"{doc_id}: the page has no text")
    return Article(doc_id=doc_id, title=page.title, source_url=source_url, body=page.body)


def article_from_markdown(text: str, *, doc_id: str, url: str | None = None) -> Article:
    """A Markdown article; for a fetched one the URL stands in for a missing front-matter address."""
    if url and not text.lstrip().startswith("---"):
        text = f"---\nsource_url: {json.dumps(url)}\n---\n{text}"
    return parse_article(text, doc_id=doc_id)


def kb_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES)


def read_kb_file(path: Path, *, doc_id: str) -> Article:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArticleError(f"{doc_id}: not UTF-8 text") from None
    if path.suffix.lower() in HTML_SUFFIXES:
        return article_from_html(text, doc_id=doc_id)
    return article_from_markdown(text, doc_id=doc_id)


def read_url_list(path: Path) -> tuple[list[str], list[str]]:
    """(http(s) URLs, problems) from a file with one URL per line; `#` starts a comment."""
    urls, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = urldefrag(entry.split()[0]).url
        if re.match(r"^https?://[^\s/]+", entry):
            urls.append(entry)
        else:
            problems.append(f"{path.name} line {number}: not an http(s) URL")
    return list(dict.fromkeys(urls)), problems


async def fetch(session: Any, url: str, *, timeout: float, max_bytes: int = MAX_FETCH_BYTES) -> tuple[str, str, bytes]:
    """(content type, charset, body) of `url`; SourceError for HTTP errors, timeouts and oversized bodies."""
    import asyncio

    import aiohttp

    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10)),
                               headers={"User-Agent": "csharp-ai-buddy-ingest/1.0"}) as response:
            if response.status >= 400:
                raise SourceError(f"{url}: HTTP {response.status}")
            body = await response.content.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise SourceError(f"{url}: larger than {max_bytes // (1024 * 1024)} MB")
            return response.content_type or "", response.charset or "utf-8", body
    except asyncio.TimeoutError:
        raise SourceError(f"{url}: timed out after {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}") from None


def article_from_fetched(url: str, content_type: str, charset: str, body: bytes) -> Article:
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        text = body.decode("utf-8", errors="replace")
    if "html" in content_type or text.lstrip()[:100].lower().startswith(("<!doctype html", "<html")):
        return article_from_html(text, doc_id=url, url=url)
    return article_from_markdown(text, doc_id=url, url=url)


# --- news feeds -----------------------------------------------------------------------------------


@dataclass
class FeedResult:
    items: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _entry_date(entry: Any) -> dt.datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(name)
        if value:
            return dt.datetime(*value[:6], tzinfo=dt.timezone.utc)
    return None


def _feed_self_url(parsed: Any) -> str:
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "self" and link.get("href"):
            return link["href"]
    return parsed.feed.get("link", "")


def parse_feed(data: bytes, *, name: str, feed_url: str | None = None) -> FeedResult:
    """`documents` records (original field names) from RSS/Atom bytes; SourceError when it is no feed."""
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.entries and (parsed.bozo or not parsed.version):
        raise SourceError(f"{name}: not an RSS or Atom feed")
    # Feeds are someone else's content: a link that is not http(s) (javascript:, data:...) is dropped.
    feed_url = http_url(feed_url or _feed_self_url(parsed))
    result = FeedResult()
    for position, entry in enumerate(parsed.entries, start=1):
        title = html_to_text(entry.get("title", "")).strip()
        raw_link = (entry.get("link") or "").strip()
        link = http_url(raw_link)
        item_id = (entry.get("id") or raw_link).strip()
        if not title or not item_id:
            result.problems.append(f"{name} entry {position}: no title or id/link; skipped")
            continue
        contents = [c.get("value", "") for c in entry.get("content", []) if c.get("value")]
        summary = html_to_text(entry.get("summary", ""))
        content = html_to_text(contents[0]) if contents else summary
        if len(summary) > NEWS_SUMMARY_CHARS:
            summary = summary[:NEWS_SUMMARY_CHARS].rstrip() + "..."
        item = {
            "documentId": "rss-" + hashlib.sha256(item_id.encode()).hexdigest()[:24],
            "title": title,
            "summary": summary or None,
            "content": content,
            "sourceUrl": link or None,
            "publishedDate": _entry_date(entry),
            "rss_feed_url": feed_url or None,
            "rss_item_id": item_id,
            "rss_author": (entry.get("author") or "").strip() or None,
        }
        result.items.append({k: v for k, v in item.items() if v is not None})
    return result


# --- samples --------------------------------------------------------------------------------------


def read_samples_file(path: Path) -> tuple[list[dict], list[str]]:
    """(valid samples, problems) from a JSON array (or {"samples": [...]}); SourceError if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path.name}: cannot be read as JSON ({type(exc).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("samples"), list):
        data = data["samples"]
    if not isinstance(data, list):
        raise SourceError(f"{path.name}: expected a JSON array of samples")
    samples, problems = [], []
    for position, raw in enumerate(data, start=1):
        try:
            samples.append(validate_sample(raw))
        except SampleError as exc:
            problems.append(f"{path.name} item {position}: {exc}")
    return samples, problems
