"""The real server over real HTTP: news, RSS, samples and one chat question."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import feedparser
import httpx
import pytest

from tests.utils.app import CHAT_QUESTION

pytestmark = pytest.mark.slow  # `python main.py` as a real process


@pytest.fixture
async def http(live_server):
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as client:
        yield client


async def test_health_and_documented_endpoints(http):
    health = await http.get("/health")
    assert health.status_code == 200 and health.json()["components"]["store"]["detail"] == "embedded"
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in ("/api/news", "/api/news/rss", "/api/samples", "/api/samples/tags", "/api/samples/{sample_id}"):
        assert set(paths[path]) == {"get"}


async def test_news_pages_and_search(http):
    first = await http.get("/api/news", params={"page_size": 10})
    assert first.status_code == 200
    body = first.json()
    assert body["total"] >= 30 and body["pages"] == -(-body["total"] // 10) and len(body["news"]) == 10
    dates = [item["published_date"] for item in body["news"]]
    assert dates == sorted(dates, reverse=True)
    assert all(item["url"].startswith("https://") and item["summary"] for item in body["news"])
    past = (await http.get("/api/news", params={"page": body["pages"] + 1, "page_size": 10})).json()
    assert past["news"] == [] and past["total"] == body["total"]
    found = (await http.get("/api/news", params={"search": "SEMANTIC KERNEL"})).json()
    assert 0 < found["total"] < body["total"]
    for query in ("c++", "(", ".*", "[", "x" * 10_000):
        response = await http.get("/api/news", params={"search": query})
        assert response.status_code == 200, query
    assert (await http.get("/api/news", params={"page_size": 101})).status_code == 422


async def test_rss_parses_with_feedparser_and_the_stdlib(http):
    response = await http.get("/api/news/rss")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo and parsed.version == "rss20" and 10 <= len(parsed.entries) <= 50
    channel = ET.fromstring(response.content).find("channel")
    items = channel.findall("item")
    assert len(items) == len(parsed.entries)
    dates = [parsedate_to_datetime(item.findtext("pubDate")) for item in items]
    assert dates == sorted(dates, reverse=True)
    assert all(item.findtext("guid") and item.findtext("link").startswith("https://") for item in items)


async def test_samples_gallery(http):
    page = (await http.get("/api/samples", params={"page_size": 100})).json()
    assert page["total"] >= 30 and len(page["samples"]) == page["total"]
    tags = (await http.get("/api/samples/tags")).json()["tags"]
    assert len(tags) >= 5 and len(set(tags)) == len(tags)
    chosen = tags[:2]
    filtered = (await http.get("/api/samples", params={"tags": ",".join(chosen)})).json()
    assert filtered["total"] > 0
    assert all(set(sample["tags"]) & set(chosen) for sample in filtered["samples"])
    one = page["samples"][0]
    assert (await http.get(f"/api/samples/{one['id']}")).json() == one
    missing = await http.get("/api/samples/no-such-sample")
    assert missing.status_code == 404 and missing.json() == {"detail": "Sample not found"}
    assert (await http.get("/api/samples", params={"search": "[" * 500})).status_code == 200


async def test_one_chat_question_streams_a_grounded_answer(http):
    async with http.stream("POST", "/api/chat", json={"message": CHAT_QUESTION, "history": []}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(raw) async for raw in response.aiter_lines() if raw.strip()]
    assert lines[0]["type"] == "metadata" and re.fullmatch(r"[0-9a-f]{16}", lines[0]["span_id"])
    assert lines[-1] == {**lines[-1], "type": "complete", "span_id": lines[0]["span_id"]}
    answer = "".join(line["content"] for line in lines if line["type"] == "content")
    assert len(answer) > 50 and "http" in answer
