"""News and samples at startup: their indexes, the shipped seed data, and the embedded snapshots."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo.errors import OperationFailure

from services.content.cache import CollectionView, CounterWatch, DataVersionWatch, as_utc
from services.storage.database import KB_META, NEWS, SAMPLES, Database
from services.content.news import NEWS_PROJECTION, NewsSnapshot, prepare_news, upsert_news_documents
from services.content.samples import SampleError, SamplesSnapshot, prepare_samples, upsert_sample, validate_sample
from services.core.settings import Settings
from services.core.urls import http_url

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
NEWS_FILE = DATA_DIR / "news.json"
SAMPLES_FILE = DATA_DIR / "samples.json"
SEED_MARKER_ID = "content_seed"  # in kb_meta: hashes of the seed files last loaded
NEWS_DATE_FIELDS = ("publishedDate", "indexedDate", "createdDate")


async def _create_index(collection: Any, keys: Any, **options: Any) -> None:
    """Create an index; a unique one that existing data violates falls back to a plain one.

    An existing deployment's collection may already hold duplicates (or an index of the same
    name with other options); that must not stop the service from starting.
    """
    try:
        await collection.create_index(keys, **options)
    except OperationFailure as exc:
        log.warning("index %s on %s not created as asked (%s)", keys, collection.name, exc)
        if options.pop("unique", False):
            try:
                await collection.create_index(keys, **options)
            except OperationFailure:
                log.warning("plain index %s on %s not created either", keys, collection.name)


async def ensure_content_indexes(database: Database) -> None:
    """Indexes for the news/samples queries; idempotent on MongoDB and the embedded engine."""
    news, samples = database[NEWS], database[SAMPLES]
    await _create_index(news, [("publishedDate", -1), ("indexedDate", -1), ("_id", -1)])
    await _create_index(news, "documentId", unique=True, sparse=True)
    await _create_index(news, "rss_item_id", unique=True, sparse=True)
    await _create_index(samples, "id", unique=True)
    await _create_index(samples, "tags")
    await _create_index(samples, [("title", 1), ("id", 1), ("_id", 1)])


def news_seed_document(raw: Any) -> dict:
    """A seed news record with real datetimes; ValueError when it cannot be used."""
    if not isinstance(raw, dict):
        raise ValueError("a news item must be a JSON object")
    for name in ("documentId", "title"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ValueError(f"news item {raw.get('documentId')!r}: '{name}' must be a non-empty string")
    doc = {name: value for name, value in raw.items() if value is not None and name != "_id"}
    for name in ("sourceUrl", "rss_feed_url"):  # links: http(s) only, anything else is dropped
        if name in doc and http_url(doc[name]) is None:
            del doc[name]
    for name in NEWS_DATE_FIELDS:
        if name in doc:
            moment = as_utc(doc[name])
            if moment is None:
                raise ValueError(f"news item {raw['documentId']!r}: '{name}' is not a date")
            doc[name] = moment
    return doc


@dataclass
class SeedReport:
    skipped: bool = False  # the same seed files were already loaded
    news_added: int = 0
    news_updated: int = 0
    samples_added: int = 0
    samples_updated: int = 0
    problems: list[str] = field(default_factory=list)


def _read_json_list(path: Path, problems: list[str]) -> list | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: cannot be read as JSON ({type(exc).__name__})")
        return None
    if not isinstance(data, list):
        problems.append(f"{path.name}: expected a JSON array")
        return None
    return data


async def seed_content(*, database: Database, news_path: Path = NEWS_FILE, samples_path: Path = SAMPLES_FILE,
                       force: bool = False) -> SeedReport:
    """Upsert the seed news (by `documentId`) and samples (by `id`); skipped when already loaded."""
    report = SeedReport()
    digest = hashlib.sha256()
    for path in (news_path, samples_path):
        digest.update(path.read_bytes() if path.exists() else b"-")
    marker = await database[KB_META].find_one({"_id": SEED_MARKER_ID})
    if marker and marker.get("hash") == digest.hexdigest() and not force:
        report.skipped = True
        return report
    file_problems: list[str] = []
    news_docs, samples = [], []
    for raw in _read_json_list(news_path, file_problems) or []:
        try:
            news_docs.append(news_seed_document(raw))
        except ValueError as exc:
            report.problems.append(f"{news_path.name}: {exc}")
    for raw in _read_json_list(samples_path, file_problems) or []:
        try:
            samples.append(validate_sample(raw))
        except SampleError as exc:
            report.problems.append(f"{samples_path.name}: {exc}")
    report.news_added, report.news_updated = await upsert_news_documents(database=database, docs=news_docs)
    for sample in samples:
        if await upsert_sample(database=database, sample=sample):
            report.samples_added += 1
        else:
            report.samples_updated += 1
    report.problems[:0] = file_problems
    if not file_problems:  # a missing or broken file is retried on the next start
        await database[KB_META].update_one({"_id": SEED_MARKER_ID}, {"$set": {"hash": digest.hexdigest()}}, upsert=True)
    return report


async def prepare_content(*, database: Database, settings: Settings) -> None:
    """Startup: create the news/samples indexes and, when seeding is on, load the seed data."""
    await ensure_content_indexes(database)
    if not settings.seed_on_startup:
        return
    report = await seed_content(database=database)
    for problem in report.problems:
        log.warning("content seed: %s", problem)
    if not report.skipped:
        log.info("content seed: news %d added, %d updated; samples %d added, %d updated", report.news_added,
                 report.news_updated, report.samples_added, report.samples_updated)


@dataclass
class ContentViews:
    """In-memory views of news and samples on the embedded engine; both None on MongoDB."""

    news: CollectionView[NewsSnapshot] | None = None
    samples: CollectionView[SamplesSnapshot] | None = None
    _warming: list[asyncio.Task] = field(default_factory=list)

    def start_warming(self) -> None:
        """Load both snapshots in the background so the first visitor doesn't wait (~1 s per 5k docs)."""
        for view in (self.news, self.samples):
            if view is not None:
                self._warming.append(asyncio.get_running_loop().create_task(_warm(view)))

    def close(self) -> None:
        for task in self._warming:
            task.cancel()
        for view in (self.news, self.samples):
            if view is not None:
                view.close()


async def _warm(view: CollectionView) -> None:
    try:
        await view.get()
    except asyncio.CancelledError:
        raise
    except Exception:  # the first request will retry and report properly
        log.warning("could not preload a content snapshot", exc_info=True)


def open_content_views(*, settings: Settings, database: Database) -> ContentViews:
    """Snapshots on the embedded engine (reloaded on SQLite's data version) and with shared state (on the
    collections' version counters, see services/content/cache.py); none on MongoDB in one process."""
    if not database.embedded and not settings.uses_shared_state:
        return ContentViews()
    # litemongo keeps each collection in one SQLite file: <data_dir>/mongo/<database>/<collection>
    folder = Path(settings.data_dir).absolute() / "mongo" / settings.database_name

    def watch(name: str):
        return CounterWatch(database, name) if settings.uses_shared_state else DataVersionWatch(folder / name)

    def view(name: str, projection: dict | None, prepare) -> CollectionView:
        return CollectionView(load=lambda: database[name].find({}, projection).to_list(), prepare=prepare,
                              watch=watch(name))

    views = ContentViews(news=view(NEWS, NEWS_PROJECTION, prepare_news), samples=view(SAMPLES, None, prepare_samples))
    views.start_warming()
    return views
