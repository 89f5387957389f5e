"""GET /api/news (pages of news, newest first) and GET /api/news/rss (the same news as RSS 2.0)."""

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from models import UtcDatetime
from routers.deps import ContentDep, DatabaseDep, SettingsDep
from services.content.cache import MAX_SEARCH_CHARS
from services.content.news import list_news, rss_feed

router = APIRouter(prefix="/api/news", tags=["news"])
RSS_MEDIA_TYPE = "application/rss+xml; charset=utf-8"


class NewsItem(BaseModel):
    id: str
    title: str
    summary: str
    source: str
    author: str | None = None
    published_date: UtcDatetime | None = None
    url: str | None = None


class NewsPage(BaseModel):
    news: list[NewsItem]
    total: int
    page: int
    pages: int
    page_size: int


@router.get("", response_model=NewsPage)
async def read_news(
    database: DatabaseDep,
    content: ContentDep,
    page: int = Query(1, ge=1, description="1-based page number; pages past the end are empty."),
    page_size: int = Query(20, ge=1, le=100),
    search: str | None = Query(None, description=f"Case-insensitive literal text in title, content or author "
                                                 f"(only the first {MAX_SEARCH_CHARS} characters are used)."),
) -> dict:
    """A page of news items, newest first, optionally filtered by a literal search."""
    return await list_news(database=database, view=content.news, page=page,
                           page_size=page_size, search=search)


@router.get("/rss", response_class=Response, responses={200: {"content": {"application/rss+xml": {}}}})
async def news_rss(database: DatabaseDep, content: ContentDep, settings: SettingsDep) -> Response:
    """The latest 50 feed-sourced news items as an RSS 2.0 feed."""
    # Links come from PUBLIC_BASE_URL, never from the Host header: a cached feed must not carry a
    # visitor-chosen address to everyone else.
    body = await rss_feed(database=database, view=content.news, site_url=settings.site_url + "/",
                          feed_url=settings.site_url + router.prefix + "/rss")
    return Response(body, media_type=RSS_MEDIA_TYPE, headers={"Cache-Control": "public, max-age=300"})
