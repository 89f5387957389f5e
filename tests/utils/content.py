"""Data helpers for the news/samples tests: an app with its services at hand, and odd documents."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager

from services.container import AppServices
from services.core.settings import Settings
from tests.utils.app import build_app


@contextlib.asynccontextmanager
async def content_app(settings: Settings, **app_options) -> AsyncIterator[tuple[httpx.AsyncClient, AppServices]]:
    """Like tests.utils.app.running_app, but also yields the app's services (for writing test data)."""
    app = build_app(settings, **app_options)
    async with LifespanManager(app, startup_timeout=180, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            yield client, app.state.services


def news_doc(n: int, **fields) -> dict:
    """A well-formed `documents` entry published `n` hours after 2024-01-01 (later n = newer)."""
    published = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=n)
    doc = {
        "documentId": f"news-{n:05d}",
        "title": f"News item {n}",
        "summary": f"Summary of item {n}.",
        "content": f"Body text of news item number {n}.",
        "sourceUrl": f"https://devblogs.microsoft.com/dotnet/item-{n}/",
        "publishedDate": published,
        "indexedDate": published + dt.timedelta(minutes=5),
        "createdDate": published + dt.timedelta(minutes=5),
        "rss_feed_url": "https://devblogs.microsoft.com/dotnet/feed/",
        "rss_item_id": f"https://devblogs.microsoft.com/dotnet/?p={n}",
        "rss_author": f"Author {n % 3}",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def sample_doc(n: int, **fields) -> dict:
    """A well-formed `samples` entry titled so that alphabetical order follows `n`."""
    doc = {
        "id": f"sample-{n:05d}",
        "title": f"Sample {n:05d}",
        "description": f"Description of sample {n}.",
        "preview": "Console.WriteLine(\"hi\");",
        "authorUrl": "https://github.com/dotnet",
        "author": f"Author {n % 3}",
        "source": f"https://github.com/dotnet/ai-samples/tree/main/src/{n}",
        "tags": ["Tag A"] if n % 2 else ["Tag B", "Shared"],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def bulk_news(count: int) -> list[dict]:
    return [news_doc(n, content=f"Body {n} " + "lorem ipsum dolor sit amet " * 20) for n in range(count)]


def bulk_samples(count: int) -> list[dict]:
    return [sample_doc(n, description=f"Description {n} " + "lorem ipsum dolor sit amet " * 10) for n in range(count)]
