"""News from the `documents` collection: pages, literal search, the RSS feed, and upserts.

Field names are the original deployment's (`documentId`, `publishedDate`, `rss_feed_url`, ...);
documents may be odd (missing fields, string or garbage dates) and must never break a page.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from services.content.cache import (
    bump_version,
    CollectionView,
    TextIndex,
    as_utc,
    bson_sort_key,
    literal_regex,
    normalise_search,
    page_count,
    skip_for,
)
from services.core.urls import http_url
from services.storage.database import NEWS, Database

SUMMARY_CHARS = 140
RSS_ITEMS = 50
# Newest first; `_id` last so pages are stable when dates tie. The index in content_seed matches.
NEWS_SORT = [("publishedDate", -1), ("indexedDate", -1), ("_id", -1)]
NEWS_PROJECTION = {"documentId": 1, "title": 1, "summary": 1, "content": 1, "sourceUrl": 1, "publishedDate": 1,
                   "indexedDate": 1, "rss_feed_url": 1, "rss_item_id": 1, "rss_author": 1}
SEARCH_FIELDS = ("title", "content", "rss_author")  # the "author" the website shows is rss_author
RSS_FILTER = {"rss_feed_url": {"$nin": [None, ""]}, "rss_item_id": {"$nin": [None, ""]}}
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def news_source(feed_url: Any) -> str:
    """A readable source name from the item's feed URL."""
    try:
        host = (urlsplit(feed_url.strip()).hostname or "") if isinstance(feed_url, str) else ""
    except ValueError:
        host = ""
    if not host:
        return "Unknown"
    if host == "devblogs.microsoft.com":
        return "Microsoft DevBlogs"
    if host == "microsoft.com" or host.endswith(".microsoft.com"):
        return "Microsoft"
    return host[4:] if host.startswith("www.") else host


def news_summary(doc: dict) -> str:
    """The stored summary, else the content cut at SUMMARY_CHARS with an ellipsis."""
    summary = _text(doc.get("summary"))
    if summary:
        return summary
    content = _text(doc.get("content"))
    return content if len(content) <= SUMMARY_CHARS else content[:SUMMARY_CHARS].rstrip() + "..."


def news_item(doc: dict) -> dict:
    """One `documents` entry in the website's NewsItem shape."""
    return {
        "id": _text(doc.get("documentId")) or str(doc.get("_id", "")),
        "title": _text(doc.get("title")) or "Untitled",
        "summary": news_summary(doc),
        "source": news_source(doc.get("rss_feed_url")),
        "author": _text(doc.get("rss_author")) or None,
        "published_date": as_utc(doc.get("publishedDate")),
        "url": http_url(doc.get("sourceUrl")),  # older rows may hold any scheme: only http(s) leaves
    }


def _has_rss(doc: dict) -> bool:
    return all(doc.get(name) not in (None, "") for name in ("rss_feed_url", "rss_item_id"))


@dataclass
class NewsSnapshot:
    """Every news item, newest first, with its search index (embedded engine only)."""

    items: list[dict]
    index: TextIndex
    rss: list[tuple[dict, dict]]  # (item, rss extras) of the latest feed-sourced items
    rss_documents: dict[tuple[str, str], bytes] = field(default_factory=dict)  # built feeds by (site, self) URL


def prepare_news(docs: list[dict]) -> NewsSnapshot:
    def key(doc: dict) -> tuple:
        return tuple(bson_sort_key(doc.get(name)) for name, _ in NEWS_SORT)

    ordered = sorted(docs, key=key, reverse=True)
    items = [news_item(doc) for doc in ordered]
    rss = [(item, _rss_extras(doc)) for item, doc in zip(items, ordered) if _has_rss(doc)][:RSS_ITEMS]
    index = TextIndex([[doc.get(name) for name in SEARCH_FIELDS] for doc in ordered])
    return NewsSnapshot(items=items, index=index, rss=rss)


def _search_filter(text: str) -> dict:
    return {"$or": [{name: literal_regex(text)} for name in SEARCH_FIELDS]} if text else {}


async def list_news(*, database: Database, view: CollectionView[NewsSnapshot] | None, page: int, page_size: int,
                    search: str | None = None) -> dict:
    """One page of news, newest first; `search` is matched literally and case-insensitively."""
    text = normalise_search(search)
    skip = skip_for(page, page_size)
    if view is not None:
        snapshot = await view.get()
        if text:
            positions = snapshot.index.matches(text)
            total, items = len(positions), [snapshot.items[i] for i in positions[skip : skip + page_size]]
        else:
            total, items = len(snapshot.items), snapshot.items[skip : skip + page_size]
    else:
        query = _search_filter(text)
        collection = database[NEWS]
        total = await collection.count_documents(query)
        docs = [] if skip >= total else await (
            collection.find(query, NEWS_PROJECTION).sort(NEWS_SORT).skip(skip).limit(page_size).to_list()
        )
        items = [news_item(doc) for doc in docs]
    return {"news": items, "total": total, "page": page, "pages": page_count(total, page_size), "page_size": page_size}


# --- RSS ------------------------------------------------------------------------------------------


def _rss_extras(doc: dict) -> dict:
    return {"guid": str(doc.get("rss_item_id")), "feed_url": http_url(doc.get("rss_feed_url"))}


async def rss_feed(*, database: Database, view: CollectionView[NewsSnapshot] | None, site_url: str,
                   feed_url: str) -> bytes:
    """The RSS document of the latest items that came from a feed (`rss_feed_url` and `rss_item_id` set)."""
    if view is not None:
        snapshot = await view.get()
        key = (site_url, feed_url)
        if key not in snapshot.rss_documents:  # built once per snapshot and address
            if len(snapshot.rss_documents) >= 8:  # one address (PUBLIC_BASE_URL) in practice; bounded anyway
                snapshot.rss_documents.clear()
            snapshot.rss_documents[key] = build_rss(snapshot.rss, site_url=site_url, feed_url=feed_url)
        return snapshot.rss_documents[key]
    docs = await database[NEWS].find(RSS_FILTER, NEWS_PROJECTION).sort(NEWS_SORT).limit(RSS_ITEMS).to_list()
    entries = [(news_item(doc), _rss_extras(doc)) for doc in docs if _has_rss(doc)]
    return build_rss(entries, site_url=site_url, feed_url=feed_url)


def _clean(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters); escaping is ElementTree's job."""
    return _XML_INVALID.sub("", text)


def _child(parent: ET.Element, tag: str, text: str | None, **attrs: str) -> None:
    if text:
        element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
        element.text = _clean(text)


def build_rss(entries: list[tuple[dict, dict]], *, site_url: str, feed_url: str) -> bytes:
    """An RSS 2.0 document (UTF-8) for `entries`, with RFC-822 dates."""
    atom = "http://www.w3.org/2005/Atom"
    ET.register_namespace("atom", atom)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _child(channel, "title", "C# AI Buddy: .NET AI news")
    _child(channel, "link", site_url)
    _child(channel, "description", "The latest news about building AI applications with C# and .NET.")
    _child(channel, "language", "en")
    ET.SubElement(channel, f"{{{atom}}}link", {"href": _clean(feed_url), "rel": "self", "type": "application/rss+xml"})
    dates = [item["published_date"] for item, _ in entries if item["published_date"]]
    _child(channel, "lastBuildDate", format_datetime(max(dates) if dates else dt.datetime.now(dt.timezone.utc), usegmt=True))
    for item, extras in entries:
        element = ET.SubElement(channel, "item")
        _child(element, "title", item["title"])
        _child(element, "link", item["url"])
        _child(element, "guid", extras["guid"], isPermaLink="false")
        _child(element, "description", item["summary"])
        if item["published_date"]:
            _child(element, "pubDate", format_datetime(item["published_date"], usegmt=True))
        _child(element, "author", item["author"])
        if extras["feed_url"]:  # RSS requires the source's url; without an http(s) one there is no <source>
            _child(element, "source", item["source"], url=extras["feed_url"])
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)


# --- writes ---------------------------------------------------------------------------------------


async def upsert_news_documents(*, database: Database, docs: list[dict]) -> tuple[int, int]:
    """Upsert complete documents keyed by `documentId` (seed data); returns (added, updated)."""
    added = updated = 0
    for doc in docs:
        result = await database[NEWS].update_one({"documentId": doc["documentId"]}, {"$set": doc}, upsert=True)
        if result.upserted_id is not None:
            added += 1
        else:
            updated += 1
    if docs:
        await bump_version(database, NEWS)
    return added, updated


async def upsert_feed_item(*, database: Database, item: dict) -> bool:
    """Upsert one feed item keyed by `rss_item_id`; True when it was new.

    `documentId`, `createdDate` and `indexedDate` are written only on insert, so re-reading a feed
    refreshes the text without changing an item's identity or its place in the list.
    """
    now = dt.datetime.now(dt.timezone.utc)
    on_insert = {"documentId": item.pop("documentId"), "createdDate": now, "indexedDate": now}
    result = await database[NEWS].update_one({"rss_item_id": item["rss_item_id"]},
                                             {"$set": item, "$setOnInsert": on_insert}, upsert=True)
    await bump_version(database, NEWS)
    return result.upserted_id is not None
