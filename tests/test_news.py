"""GET /api/news and /api/news/rss over HTTP against create_app(test settings) on the embedded engine."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import feedparser
import pytest
from bson import ObjectId

from services.content.setup import ensure_content_indexes, seed_content
from services.storage.database import NEWS, SAMPLES
from services.content.news import list_news
from tests.utils.app import quick_settings
from tests.utils.content import content_app, news_doc

UTC = dt.timezone.utc


@pytest.fixture
def settings(tmp_path):
    return quick_settings(tmp_path)


async def test_pages_are_newest_first_with_totals_and_empty_pages_past_the_end(settings):
    async with content_app(settings) as (client, services):
        await services.database[NEWS].insert_many([news_doc(n) for n in range(25)])
        first = (await client.get("/api/news", params={"page": 1, "page_size": 10})).json()
        assert [item["id"] for item in first["news"]] == [f"news-{n:05d}" for n in range(24, 14, -1)]
        assert (first["total"], first["page"], first["pages"], first["page_size"]) == (25, 1, 3, 10)
        last = (await client.get("/api/news", params={"page": 3, "page_size": 10})).json()
        assert [item["id"] for item in last["news"]] == [f"news-{n:05d}" for n in range(4, -1, -1)]
        past = (await client.get("/api/news", params={"page": 4, "page_size": 10})).json()
        assert past == {"news": [], "total": 25, "page": 4, "pages": 3, "page_size": 10}
        far = await client.get("/api/news", params={"page": 10**15, "page_size": 100})
        assert far.status_code == 200 and far.json()["news"] == [] and far.json()["total"] == 25
        item = first["news"][0]
        assert item == {"id": "news-00024", "title": "News item 24", "summary": "Summary of item 24.",
                        "source": "Microsoft DevBlogs", "author": "Author 0", "published_date": "2024-01-02T00:00:00Z",
                        "url": "https://devblogs.microsoft.com/dotnet/item-24/"}


@pytest.mark.parametrize("params", [{"page": 0}, {"page": -1}, {"page_size": 0}, {"page_size": 101},
                                    {"page": "x"}, {"page_size": "1.5"}])
async def test_out_of_range_paging_is_422(settings, params):
    async with content_app(settings) as (client, _):
        response = await client.get("/api/news", params=params)
        assert response.status_code == 422
        assert "detail" in response.json()


async def test_odd_documents_never_break_a_page(settings):
    long_content = "word " * 60
    odd = [
        {"title": "No id, no dates, no source", "content": long_content},
        {"documentId": "string-date", "title": "String date", "publishedDate": "2024-03-01T10:00:00Z",
         "rss_feed_url": "https://learn.microsoft.com/feed", "content": "short"},
        {"documentId": "rfc822-date", "title": "RFC date", "publishedDate": "Fri, 01 Mar 2024 09:00:00 GMT",
         "rss_feed_url": "https://www.example.org/rss"},
        {"documentId": "garbage-date", "title": "Garbage date", "publishedDate": "not a date",
         "rss_feed_url": "not a url"},
        {"documentId": "number-date", "publishedDate": 12345, "rss_feed_url": "https://microsoft.com/x",
         "summary": "   ", "content": None},
        {"documentId": "naive-date", "title": "Naive", "publishedDate": dt.datetime(2024, 5, 1, 8, 30),
         "rss_feed_url": "https://evilmicrosoft.com/feed", "rss_author": 42},
        {"documentId": "list-title", "title": ["not", "text"], "indexedDate": {"$date": "x"}},
    ]
    async with content_app(settings) as (client, services):
        inserted = await services.database[NEWS].insert_one(odd[0])
        await services.database[NEWS].insert_many(odd[1:])
        response = await client.get("/api/news", params={"page_size": 100})
        assert response.status_code == 200
        items = {item["id"]: item for item in response.json()["news"]}
        assert len(items) == 7
        nameless = items[str(inserted.inserted_id)]
        assert nameless["summary"] == long_content.strip()[:140].rstrip() + "..."
        assert len(nameless["summary"]) <= 143 and nameless["source"] == "Unknown"
        assert nameless["published_date"] is None and nameless["url"] is None and nameless["author"] is None
        assert items["string-date"]["published_date"] == "2024-03-01T10:00:00Z"
        assert items["string-date"]["summary"] == "short" and items["string-date"]["source"] == "Microsoft"
        assert items["rfc822-date"]["published_date"] == "2024-03-01T09:00:00Z"
        assert items["rfc822-date"]["source"] == "example.org" and items["rfc822-date"]["summary"] == ""
        assert items["garbage-date"]["published_date"] is None and items["garbage-date"]["source"] == "Unknown"
        assert items["number-date"]["published_date"] is None and items["number-date"]["title"] == "Untitled"
        assert items["number-date"]["source"] == "Microsoft"
        assert items["naive-date"]["published_date"] == "2024-05-01T08:30:00Z"
        assert items["naive-date"]["source"] == "evilmicrosoft.com" and items["naive-date"]["author"] is None
        assert items["list-title"]["title"] == "Untitled"
        # MongoDB's order for mixed types: real dates, then strings (as text), then numbers, then missing
        order = [item["id"] for item in response.json()["news"]]
        assert order[0] == "naive-date"
        assert order[1:4] == ["garbage-date", "rfc822-date", "string-date"]
        assert order[4] == "number-date"
        rss = await client.get("/api/news/rss")
        assert rss.status_code == 200 and not feedparser.parse(rss.content).bozo


async def test_search_is_literal_case_insensitive_and_on_title_content_author(settings):
    docs = [
        news_doc(1, title="What's new in C++ interop", content="plain"),
        news_doc(2, title="C# only", content="Regex chars .* and ( and [ live here"),
        news_doc(3, title="Third", content="nothing special", rss_author="Ada (Lovelace)"),
        news_doc(4, title="Fourth", content="cxx and c-- but no plus plus", summary="c++ in summary only"),
        news_doc(5, title="ÜBER Ärger", content="Grüße"),
    ]
    async with content_app(settings) as (client, services):
        await services.database[NEWS].insert_many(docs)

        async def ids(search: str) -> list[str]:
            response = await client.get("/api/news", params={"search": search})
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["news"]]

        assert await ids("c++") == ["news-00001"]
        assert await ids("C++ INTEROP") == ["news-00001"]
        assert await ids(".*") == ["news-00002"]
        assert await ids("(") == ["news-00003", "news-00002"]
        assert await ids("[") == ["news-00002"]
        assert await ids("lovelace)") == ["news-00003"]
        assert await ids("über ärger") == ["news-00005"]
        assert await ids("a^b$") == []
        everything = ["news-00005", "news-00004", "news-00003", "news-00002", "news-00001"]
        assert await ids("  ") == everything and await ids("\x00") == everything
        started = time.perf_counter()
        response = await client.get("/api/news", params={"search": "(a+)+" * 2000})
        assert response.status_code == 200 and response.json()["total"] == 0
        assert time.perf_counter() - started < 2.0
        paged = (await client.get("/api/news", params={"search": "AUTHOR", "page_size": 3, "page": 2})).json()
        assert paged["total"] == 4 and paged["pages"] == 2 and [i["id"] for i in paged["news"]] == ["news-00001"]


async def test_snapshot_and_server_queries_agree(settings):
    """The embedded snapshot must give what the MongoDB queries give on the same data."""
    docs = [news_doc(n, content=f"Body {n} {'C++' if n % 7 == 0 else 'csharp'}") for n in range(40)]
    docs += [
        {"documentId": "same-date-a", "title": "Tie", "publishedDate": dt.datetime(2024, 1, 1, 10, tzinfo=UTC)},
        {"documentId": "same-date-b", "title": "Tie", "publishedDate": dt.datetime(2024, 1, 1, 10, tzinfo=UTC),
         "indexedDate": dt.datetime(2024, 1, 2, tzinfo=UTC)},
        {"documentId": "str", "title": "String date", "publishedDate": "2030-01-01"},
        {"documentId": "none", "title": "No date C++"},
    ]
    async with content_app(settings) as (client, services):
        await services.database[NEWS].insert_many(docs)
        view = services.content.news
        assert view is not None  # the embedded engine has the in-memory view: compare it, not None with None
        for search in (None, "c++", "body 1", "TIE", "zzz"):
            for page, size in ((1, 7), (2, 7), (7, 7), (1, 100)):
                kwargs = dict(database=services.database, page=page, page_size=size, search=search)
                assert await list_news(view=view, **kwargs) == await list_news(view=None, **kwargs), (search, page)


async def test_writes_are_visible_at_once(settings):
    async with content_app(settings) as (client, services):
        assert (await client.get("/api/news")).json()["total"] == 0
        await services.database[NEWS].insert_one(news_doc(1))
        assert (await client.get("/api/news")).json()["total"] == 1
        await services.database[NEWS].update_one({"documentId": "news-00001"}, {"$set": {"title": "Renamed"}})
        assert (await client.get("/api/news")).json()["news"][0]["title"] == "Renamed"
        await services.database[NEWS].delete_many({})
        assert (await client.get("/api/news", params={"search": "renamed"})).json()["total"] == 0


async def test_rss_is_valid_rss_2_with_escaping_and_rfc822_dates(settings):
    tricky = 'Tom & Jerry <script>alert("x")</script> \'quoted\' — naïve 日本語 \x01\x0b'
    docs = [news_doc(n) for n in range(60)]
    docs.append(news_doc(100, title=tricky, summary="a < b && c > d", rss_author="Zoë <zoe@example.com>"))
    docs.append(news_doc(101, rss_feed_url=None, title="Not from a feed"))
    docs.append(news_doc(102, rss_item_id="", title="Empty item id"))
    async with content_app(settings) as (client, services):
        await services.database[NEWS].insert_many(docs)
        response = await client.get("/api/news/rss")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"

        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == "rss20" and len(parsed.entries) == 50
        top = parsed.entries[0]
        assert top.title == 'Tom & Jerry <script>alert("x")</script> \'quoted\' — naïve 日本語'
        assert top.link == "https://devblogs.microsoft.com/dotnet/item-100/"
        assert top.id == "https://devblogs.microsoft.com/dotnet/?p=100"
        assert top.published_parsed[:6] == (2024, 1, 5, 4, 0, 0)
        assert "Zoë" in top.author
        assert [entry.title for entry in parsed.entries[1:4]] == ["News item 59", "News item 58", "News item 57"]

        root = ET.fromstring(response.content)  # the stdlib parser as well
        assert root.tag == "rss" and root.get("version") == "2.0"
        items = root.findall("./channel/item")
        assert len(items) == 50
        assert items[0].findtext("title") == top.title + " "  # control characters dropped, the rest kept
        assert items[0].findtext("description") == "a < b && c > d"
        assert items[0].find("guid").get("isPermaLink") == "false"
        assert parsedate_to_datetime(items[0].findtext("pubDate")) == dt.datetime(2024, 1, 5, 4, tzinfo=UTC)
        assert items[0].findtext("pubDate") == "Fri, 05 Jan 2024 04:00:00 GMT"
        titles = [item.findtext("title") for item in items]
        assert "Not from a feed" not in titles and "Empty item id" not in titles
        assert (await client.get("/api/news/rss")).content == response.content


async def test_empty_rss_is_still_valid(settings):
    async with content_app(settings) as (client, _):
        response = await client.get("/api/news/rss")
        parsed = feedparser.parse(response.content)
        assert response.status_code == 200 and not parsed.bozo and parsed.entries == []


async def test_seed_data_loads_once_with_real_dates(settings):
    async with content_app(settings) as (client, services):
        first = await seed_content(database=services.database)
        assert first.problems == [] and first.news_added >= 30 and first.samples_added >= 30
        again = await seed_content(database=services.database)
        assert again.skipped
        forced = await seed_content(database=services.database, force=True)
        assert forced.news_added == 0 and forced.news_updated == first.news_added
        assert forced.samples_added == 0 and forced.samples_updated == first.samples_added
        assert await services.database[NEWS].count_documents({}) == first.news_added
        assert await services.database[SAMPLES].count_documents({}) == first.samples_added
        stored = await services.database[NEWS].find_one({})
        assert isinstance(stored["publishedDate"], dt.datetime) and isinstance(stored["indexedDate"], dt.datetime)
        page = (await client.get("/api/news", params={"page_size": 100})).json()
        assert page["total"] == first.news_added
        dates = [item["published_date"] for item in page["news"]]
        assert dates == sorted(dates, reverse=True)
        for item in page["news"]:
            assert item["url"].startswith("https://") and item["title"] and item["summary"]
        assert not feedparser.parse((await client.get("/api/news/rss")).content).bozo


async def test_indexes_are_created_idempotently_even_over_duplicates(settings):
    async with content_app(settings) as (client, services):
        database = services.database
        news_indexes = await database[NEWS].index_information()
        keys = {tuple(k for k, _ in spec["key"]) for spec in news_indexes.values()}
        assert ("publishedDate", "indexedDate", "_id") in keys and ("rss_item_id",) in keys
        sample_indexes = await database[SAMPLES].index_information()
        assert any(spec["key"] == [("id", 1)] and spec.get("unique") for spec in sample_indexes.values())
        await ensure_content_indexes(database)  # again: no error, same indexes
        assert await database[NEWS].index_information() == news_indexes
    other = quick_settings(settings.data_dir.parent / "dups")
    async with content_app(other) as (client, services):
        await services.database[SAMPLES].drop_indexes()
        await services.database[SAMPLES].insert_many([{"id": "dup", "title": "A"}, {"id": "dup", "title": "B"},
                                                      {"_id": ObjectId(), "title": "no id"}])
        await ensure_content_indexes(services.database)  # falls back to a plain index, no crash
        assert (await client.get("/api/samples")).json()["total"] == 3
