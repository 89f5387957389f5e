"""The samples gallery (`samples` collection): pages, literal search, tag filters, tags, one sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from services.content.cache import (
    bump_version,
    CollectionView,
    TextIndex,
    bson_sort_key,
    literal_regex,
    normalise_search,
    page_count,
    skip_for,
)
from services.core.urls import http_url, text_or_http_url
from services.storage.database import SAMPLES, Database

# Alphabetical by title (a gallery reads best that way); `id` keeps pages stable on equal titles.
SAMPLES_SORT = [("title", 1), ("id", 1), ("_id", 1)]
SEARCH_FIELDS = ("title", "description", "author", "tags")
TEXT_FIELDS = ("title", "description", "preview", "authorUrl", "author", "source")
URL_FIELDS = ("authorUrl", "source")  # links: absolute http(s) only
MAX_TAGS = 20
MAX_ID_CHARS = 200


def _tags(value: Any) -> list[str]:
    """Tags as a list of strings; an odd document's single string counts as one tag."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(tag) for tag in value if isinstance(tag, (str, int, float)) and str(tag).strip()]
    return []


def sample_out(doc: dict) -> dict:
    """One `samples` entry in the website's Sample shape (missing text fields become empty)."""
    out = {name: doc.get(name) if isinstance(doc.get(name), str) else "" for name in TEXT_FIELDS}
    out.update(_safe_links(out))  # rows stored before links were checked may hold any scheme
    sample_id = doc.get("id")
    out["id"] = str(sample_id) if sample_id not in (None, "") else str(doc.get("_id", ""))
    out["tags"] = _tags(doc.get("tags"))
    return out


def _safe_links(sample: dict) -> dict:
    """The link fields of `sample` with anything but http(s) URLs blanked (`preview` may also be text/code)."""
    safe = {name: http_url(sample[name]) or "" for name in URL_FIELDS if sample.get(name)}
    if sample.get("preview"):
        safe["preview"] = text_or_http_url(sample["preview"])
    return safe


def parse_tags(tags: str | None) -> list[str]:
    """`a,b` → ["a", "b"] (trimmed, de-duplicated, at most MAX_TAGS)."""
    if not tags:
        return []
    seen = dict.fromkeys(part.strip() for part in tags.split(",") if part.strip())
    return list(seen)[:MAX_TAGS]


@dataclass
class SamplesSnapshot:
    """Every sample in gallery order with its search and tag indexes (embedded engine only)."""

    items: list[dict]
    index: TextIndex
    by_tag: dict[str, list[int]]
    by_id: dict[str, dict]
    tags: list[str]

    def positions(self, text: str, tags: list[str]) -> list[int] | None:
        """Positions matching the search and any of `tags`; None when neither narrows the list."""
        found = None
        if tags:
            found = sorted({i for tag in tags for i in self.by_tag.get(tag, ())})
        if text:
            hits = self.index.matches(text)
            found = hits if found is None else sorted(set(found).intersection(hits))
        return found


def sort_tags(tags: set[str]) -> list[str]:
    return sorted(tags, key=lambda tag: (tag.lower(), tag))


def prepare_samples(docs: list[dict]) -> SamplesSnapshot:
    def key(doc: dict) -> tuple:
        return tuple(bson_sort_key(doc.get(name)) for name, _ in SAMPLES_SORT)

    ordered = sorted(docs, key=key)
    items = [sample_out(doc) for doc in ordered]
    by_tag: dict[str, list[int]] = {}
    by_id: dict[str, dict] = {}
    for position, item in enumerate(items):
        for tag in dict.fromkeys(item["tags"]):
            by_tag.setdefault(tag, []).append(position)
        by_id.setdefault(item["id"], item)
    index = TextIndex([[doc.get("title"), doc.get("description"), doc.get("author"), *item["tags"]]
                       for doc, item in zip(ordered, items)])
    return SamplesSnapshot(items=items, index=index, by_tag=by_tag, by_id=by_id, tags=sort_tags(set(by_tag)))


def _query(text: str, tags: list[str]) -> dict:
    parts = []
    if text:
        parts.append({"$or": [{name: literal_regex(text)} for name in SEARCH_FIELDS]})
    if tags:
        parts.append({"tags": {"$in": tags}})
    return {"$and": parts} if len(parts) > 1 else (parts[0] if parts else {})


async def list_samples(*, database: Database, view: CollectionView[SamplesSnapshot] | None, page: int,
                       page_size: int, search: str | None = None, tags: str | None = None) -> dict:
    """One page of samples; `search` is literal and case-insensitive, `tags` matches any of them."""
    text, wanted = normalise_search(search), parse_tags(tags)
    skip = skip_for(page, page_size)
    if view is not None:
        snapshot = await view.get()
        positions = snapshot.positions(text, wanted)
        if positions is None:
            total, items = len(snapshot.items), snapshot.items[skip : skip + page_size]
        else:
            total, items = len(positions), [snapshot.items[i] for i in positions[skip : skip + page_size]]
    else:
        query = _query(text, wanted)
        total = await database[SAMPLES].count_documents(query)
        docs = [] if skip >= total else await (
            database[SAMPLES].find(query).sort(SAMPLES_SORT).skip(skip).limit(page_size).to_list()
        )
        items = [sample_out(doc) for doc in docs]
    return {"samples": items, "total": total, "page": page, "pages": page_count(total, page_size),
            "page_size": page_size}


async def sample_tags(*, database: Database, view: CollectionView[SamplesSnapshot] | None) -> list[str]:
    """Every tag in use, sorted case-insensitively."""
    if view is not None:
        return (await view.get()).tags
    values = await database[SAMPLES].distinct("tags")
    return sort_tags({str(v) for v in values if isinstance(v, (str, int, float)) and str(v).strip()})


async def get_sample(*, database: Database, view: CollectionView[SamplesSnapshot] | None,
                     sample_id: str) -> dict | None:
    """The sample whose `id` (or, for documents without one, `_id`) is `sample_id`."""
    if view is not None:
        return (await view.get()).by_id.get(sample_id)
    doc = await database[SAMPLES].find_one({"id": sample_id})
    if doc is None:
        candidates: list[Any] = [sample_id]
        try:
            candidates.append(ObjectId(sample_id))
        except (InvalidId, TypeError):
            pass
        doc = await database[SAMPLES].find_one({"_id": {"$in": candidates}})
    return sample_out(doc) if doc is not None else None


# --- writes ---------------------------------------------------------------------------------------


class SampleError(ValueError):
    """A sample record cannot be stored (the message says why)."""


def validate_sample(raw: Any) -> dict:
    """A sample record with the original field names, or SampleError."""
    if not isinstance(raw, dict):
        raise SampleError("a sample must be a JSON object")
    sample_id = raw.get("id")
    if not isinstance(sample_id, str) or not sample_id.strip() or len(sample_id) > MAX_ID_CHARS:
        raise SampleError(f"'id' must be a non-empty string of at most {MAX_ID_CHARS} characters")
    if not isinstance(raw.get("title"), str) or not raw["title"].strip():
        raise SampleError(f"sample {sample_id!r}: 'title' must be a non-empty string")
    for name in TEXT_FIELDS:
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise SampleError(f"sample {sample_id!r}: '{name}' must be a string")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SampleError(f"sample {sample_id!r}: 'tags' must be a list of strings")
    sample = {name: raw[name] for name in TEXT_FIELDS if raw.get(name) is not None}
    for name in URL_FIELDS:  # an operator's file: a bad link is reported, not silently dropped
        if sample.get(name, "").strip():
            url = http_url(sample[name])
            if url is None:
                raise SampleError(f"sample {sample_id!r}: '{name}' must be an http(s) URL")
            sample[name] = url
    if sample.get("preview") and not text_or_http_url(sample["preview"]):
        raise SampleError(f"sample {sample_id!r}: 'preview' must be text or an http(s) URL")
    sample.update(id=sample_id.strip(), tags=[t.strip() for t in tags if t.strip()])
    return sample


async def upsert_sample(*, database: Database, sample: dict) -> bool:
    """Store a validated sample keyed by `id`; True when it was new."""
    result = await database[SAMPLES].update_one({"id": sample["id"]}, {"$set": sample}, upsert=True)
    await bump_version(database, SAMPLES)
    return result.upserted_id is not None
