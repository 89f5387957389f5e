"""The ingestion commands (`python main.py ingest ...`) against a temp data dir and a local web server."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from services.cli import EXIT_FATAL, EXIT_OK, EXIT_SKIPPED, run_cli, run_command
from services.storage.database import CHUNKS, KB_DOCUMENTS, KB_META, NEWS, SAMPLES, open_database
from tests.utils.app import make_settings, quick_settings, serve_aiohttp
from tests.utils.content import content_app

ROOT = Path(__file__).resolve().parent.parent

ARTICLE_MD = """---
title: Streaming chat in C#
source_url: https://learn.microsoft.com/dotnet/ai/streaming
ai_library: Microsoft.Extensions.AI
---
# Streaming chat in C#

Stream tokens as they arrive with GetStreamingResponseAsync.

## Example

```csharp
await foreach (var update in client.GetStreamingResponseAsync("Hi"))
{
    Console.Write(update.Text);
}
```
"""

ARTICLE_HTML = """<!doctype html><html><head><title>Embeddings with IEmbeddingGenerator</title>
<link rel="canonical" href="https://learn.microsoft.com/dotnet/ai/embeddings"><style>p{}</style></head>
<body><nav>Home | Docs</nav><h1>Embeddings</h1><p>Generate vectors &amp; compare them.</p>
<h2>Code</h2><pre><code>var v = await generator.GenerateAsync(["a"]);
    Console.WriteLine(v.Count);</code></pre><footer>(c)</footer></body></html>"""

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>.NET Blog</title><link>https://devblogs.microsoft.com/dotnet/</link><description>d</description>
<item><title>Tom &amp; Jerry &lt;3 .NET — naïve</title><link>https://devblogs.microsoft.com/dotnet/a/</link>
<guid isPermaLink="false">https://devblogs.microsoft.com/dotnet/?p=1</guid><dc:creator>Jane Doe</dc:creator>
<pubDate>Tue, 05 Mar 2024 17:00:00 +0000</pubDate><description><![CDATA[<p>Short <b>summary</b>.</p>]]></description>
<content:encoded><![CDATA[<h2>Intro</h2><p>Full body about C++ and C#.</p>]]></content:encoded></item>
<item><title>Second</title><link>https://devblogs.microsoft.com/dotnet/b/</link>
<pubDate>Wed, 06 Mar 2024 17:00:00 GMT</pubDate><description>Plain</description></item>
<item><description>No title, no link: skipped</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>SK releases</title>
<link rel="self" href="https://github.com/microsoft/semantic-kernel/releases.atom"/>
<id>tag:github.com,2008:releases</id><updated>2024-04-01T00:00:00Z</updated>
<entry><id>tag:github.com,2008:Repository/1/dotnet-1.5.0</id><title>dotnet-1.5.0</title>
<link rel="alternate" href="https://github.com/microsoft/semantic-kernel/releases/tag/dotnet-1.5.0"/>
<updated>2024-04-01T12:00:00Z</updated><author><name>sk-bot</name></author><content type="html">&lt;p&gt;Fixes&lt;/p&gt;</content>
</entry></feed>"""


@pytest.fixture
def settings(tmp_path):
    return quick_settings(tmp_path)


async def cli(settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_command(list(argv), settings=settings, out=out)
    return code, out.getvalue()


async def stored(settings, collection: str, query: dict | None = None) -> list[dict]:
    database = await open_database(settings)
    try:
        return await database[collection].find(query or {}).to_list()
    finally:
        await database.close()


@pytest.fixture
async def web_server():
    """A local stand-in web server: pages, Markdown, a feed, errors and a slow URL."""
    state = {"page_status": 200}

    async def page(request):
        return web.Response(text=ARTICLE_HTML, content_type="text/html", status=state["page_status"])

    async def markdown(request):
        return web.Response(text="# Tokenizers in .NET\n\nCount tokens with TiktokenTokenizer.\n", content_type="text/markdown")

    async def feed(request):
        return web.Response(body=ATOM.encode(), content_type="application/atom+xml")

    released = asyncio.Event()  # set at teardown: the slow page answers only after the client gave up

    async def slow(request):
        await released.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/page.html", page)
    app.router.add_get("/doc.md", markdown)
    app.router.add_get("/releases.atom", feed)
    app.router.add_get("/slow", slow)
    async with serve_aiohttp(app) as base_url:
        yield base_url, state
        released.set()


async def test_kb_folder_ingest_updates_changed_and_prunes_deleted(settings, tmp_path, capsys):
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "streaming.md").write_text(ARTICLE_MD, encoding="utf-8")
    (folder / "sub" / "embeddings.html").write_text(ARTICLE_HTML, encoding="utf-8")
    (folder / "no-url.md").write_text("# Title only\n\nBody.\n", encoding="utf-8")
    (folder / "no-canonical.html").write_text("<html><title>T</title><p>x</p></html>", encoding="utf-8")
    (folder / "binary.md").write_bytes(b"\xff\xfe\x00bad")

    code, out = await cli(settings, "ingest", "kb", str(folder))
    assert code == EXIT_SKIPPED and "2 added" in out and "3 skipped" in out
    err = capsys.readouterr().err
    assert "no-url: 'source_url' must be an http(s) URL" in err and "no-canonical" in err and "not UTF-8" in err
    chunks = await stored(settings, CHUNKS)
    docs = {c["doc_id"] for c in chunks}
    assert docs == {f"{folder.resolve()}/streaming", f"{folder.resolve()}/sub/embeddings"}
    assert all(len(c["embeddings"]) == 384 for c in chunks)
    code_chunk = next(c for c in chunks if "GetStreamingResponseAsync(\"Hi\")" in c["content"])
    assert code_chunk["content"].count("```") == 2 and "    Console.Write(update.Text);" in code_chunk["content"]
    html_chunks = [c for c in chunks if c["doc_id"].endswith("embeddings")]
    assert html_chunks[0]["source_url"] == "https://learn.microsoft.com/dotnet/ai/embeddings"
    assert all("Home | Docs" not in c["content"] and "p{}" not in c["content"] for c in html_chunks)
    assert any("    Console.WriteLine(v.Count);" in c["content"] for c in html_chunks)

    code, out = await cli(settings, "ingest", "kb", str(folder))
    assert "0 added, 0 updated, 2 unchanged" in out
    (folder / "streaming.md").write_text(ARTICLE_MD.replace("as they arrive", "as soon as they arrive"), encoding="utf-8")
    (folder / "sub" / "embeddings.html").unlink()
    code, out = await cli(settings, "ingest", "kb", str(folder))
    assert out.startswith("knowledge base: 0 added, 1 updated, 0 unchanged, 1 removed")
    chunks = await stored(settings, CHUNKS)
    assert {c["doc_id"] for c in chunks} == {f"{folder.resolve()}/streaming"}
    assert any("as soon as they arrive" in c["content"] for c in chunks)


async def test_kb_url_list_fetches_and_keeps_documents_whose_fetch_failed(settings, tmp_path, web_server, capsys):
    base, state = web_server
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# reading list\n{base}/page.html\n{base}/doc.md#section\n{base}/missing\n{base}/slow\n"
                    "ftp://example.com/x\n\n", encoding="utf-8")
    code, out = await cli(settings, "ingest", "kb", str(urls), "--timeout", "0.5")
    assert code == EXIT_SKIPPED and "2 added" in out
    err = capsys.readouterr().err
    assert "/missing: HTTP 404" in err and "/slow: timed out after 0.5 s" in err and "line 6: not an http(s) URL" in err
    documents = {d["doc_id"]: d for d in await stored(settings, KB_DOCUMENTS)}
    assert set(documents) == {f"{base}/page.html", f"{base}/doc.md"}
    assert documents[f"{base}/page.html"]["source_url"] == f"{base}/page.html"
    assert documents[f"{base}/doc.md"]["title"] == "Tokenizers in .NET"

    state["page_status"] = 500  # a temporary failure must not delete what was stored
    code, out = await cli(settings, "ingest", "kb", str(urls), "--timeout", "0.5")
    assert "0 added" in out and f"{base}/page.html: HTTP 500" in capsys.readouterr().err
    assert len(await stored(settings, KB_DOCUMENTS)) == 2
    urls.write_text(f"{base}/page.html\n", encoding="utf-8")  # taken off the list: pruned
    state["page_status"] = 200
    code, out = await cli(settings, "ingest", "kb", str(urls))
    assert code == EXIT_OK and "1 removed" in out and "1 unchanged" in out
    assert {d["doc_id"] for d in await stored(settings, KB_DOCUMENTS)} == {f"{base}/page.html"}
    assert {c["doc_id"] for c in await stored(settings, CHUNKS)} == {f"{base}/page.html"}


async def test_model_mismatch_is_refused_and_reembed_fixes_it(settings, tmp_path, capsys):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "streaming.md").write_text(ARTICLE_MD, encoding="utf-8")
    assert (await cli(settings, "ingest", "kb", str(folder)))[0] == EXIT_OK
    database = await open_database(settings)
    chunk_count = await database[CHUNKS].count_documents({})
    await database[KB_META].update_one({"_id": "embedding_model"}, {"$set": {"model_id": "another-model"}})
    await database[CHUNKS].update_many({}, {"$set": {"embeddings": [0.0] * 384}})
    await database.close()

    code, _ = await cli(settings, "ingest", "kb", str(folder))
    assert code == EXIT_FATAL and "python main.py ingest kb --reembed" in capsys.readouterr().err
    code, out = await cli(settings, "ingest", "kb", "--reembed")
    assert code == EXIT_OK and out.strip() == f"knowledge base: {chunk_count} chunks re-embedded"
    chunks = await stored(settings, CHUNKS)
    assert all(any(chunk["embeddings"]) for chunk in chunks)
    meta = (await stored(settings, KB_META, {"_id": "embedding_model"}))[0]
    assert meta["model_id"] == "all-MiniLM-L6-v2-onnx-int8"
    assert (await cli(settings, "ingest", "kb", str(folder)))[0] == EXIT_OK


async def test_news_feeds_from_files_and_urls_deduplicated_by_item_id(settings, tmp_path, web_server, capsys):
    base, _ = web_server
    rss, broken = tmp_path / "dotnet.xml", tmp_path / "broken.xml"
    rss.write_text(RSS, encoding="utf-8")
    broken.write_text("this is { not a feed", encoding="utf-8")
    code, out = await cli(settings, "ingest", "news", str(rss), f"{base}/releases.atom", str(broken),
                          str(tmp_path / "absent.xml"), "--timeout", "5")
    assert code == EXIT_SKIPPED and out.strip() == "news: 3 added, 0 updated; 3 skipped (see above)"
    err = capsys.readouterr().err
    assert "entry 3: no title" in err and "broken.xml: not an RSS or Atom feed" in err and "absent.xml" in err

    docs = {d["rss_item_id"]: d for d in await stored(settings, NEWS)}
    first = docs["https://devblogs.microsoft.com/dotnet/?p=1"]
    assert first["title"] == "Tom & Jerry <3 .NET — naïve" and first["rss_author"] == "Jane Doe"
    assert first["summary"] == "Short summary." and "## Intro" not in first["content"]
    assert "Full body about C++ and C#." in first["content"]
    assert first["sourceUrl"] == "https://devblogs.microsoft.com/dotnet/a/"
    assert first["rss_feed_url"] == "https://devblogs.microsoft.com/dotnet/"  # the file names no self link
    assert first["publishedDate"].replace(tzinfo=None) == dt.datetime(2024, 3, 5, 17, 0)
    assert first["documentId"].startswith("rss-") and isinstance(first["createdDate"], dt.datetime)
    second = docs["https://devblogs.microsoft.com/dotnet/b/"]  # no guid: the link identifies it
    assert "rss_author" not in second
    release = docs["tag:github.com,2008:Repository/1/dotnet-1.5.0"]
    assert release["rss_feed_url"] == f"{base}/releases.atom" and release["rss_author"] == "sk-bot"

    code, out = await cli(settings, "ingest", "news", str(rss))
    assert out.strip() == "news: 0 added, 2 updated; 1 skipped (see above)"
    again = {d["rss_item_id"]: d for d in await stored(settings, NEWS)}
    assert len(again) == 3 and again["https://devblogs.microsoft.com/dotnet/?p=1"]["documentId"] == first["documentId"]

    async with content_app(settings) as (client, _):
        page = (await client.get("/api/news", params={"search": "c++"})).json()
        assert [item["title"] for item in page["news"]] == ["Tom & Jerry <3 .NET — naïve"]
        assert page["news"][0]["source"] == "Microsoft DevBlogs"
        import feedparser

        parsed = feedparser.parse((await client.get("/api/news/rss")).content)
        assert [e.title for e in parsed.entries] == ["dotnet-1.5.0", "Second", "Tom & Jerry <3 .NET — naïve"]


async def test_samples_file_upserts_by_id_and_skips_bad_items(settings, tmp_path, capsys):
    good = {"id": "hello", "title": "Hello", "description": "d", "preview": "p", "authorUrl": "https://x.dev",
            "author": "A", "source": "https://github.com/dotnet/ai-samples", "tags": ["RAG"]}
    data = tmp_path / "samples.json"
    data.write_text(json.dumps([good, {"title": "no id"}, {"id": "t", "title": "T", "tags": "RAG"}, "nope"]))
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    code, out = await cli(settings, "ingest", "samples", str(data), str(bad))
    assert code == EXIT_SKIPPED and out.strip() == "samples: 1 added, 0 updated; 4 skipped (see above)"
    err = capsys.readouterr().err
    assert "item 2: 'id' must be" in err and "'tags' must be a list" in err and "bad.json: cannot be read" in err

    data.write_text(json.dumps({"samples": [dict(good, title="Hello again"), dict(good, id="second")]}))
    code, out = await cli(settings, "ingest", "samples", str(data))
    assert code == EXIT_OK and out.strip() == "samples: 1 added, 1 updated"
    async with content_app(settings) as (client, _):
        assert (await client.get("/api/samples/hello")).json() == dict(good, title="Hello again")
        assert (await client.get("/api/samples")).json()["total"] == 2


def test_usage_errors():  # sync: run_cli starts its own event loop
    assert run_cli(["ingest"]) == 2
    assert run_cli(["ingest", "kb"]) == EXIT_FATAL
    assert run_cli(["ingest", "podcasts", "x"]) == 2


@pytest.mark.slow  # `python main.py` in a subprocess
async def test_main_py_entry_point_shows_progress_and_counts(tmp_path):
    data = tmp_path / "samples.json"
    data.write_text(json.dumps([{"id": f"s{i}", "title": f"S{i}", "tags": []} for i in range(3)]))
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "MONGODB_URI": "", "OPENAI_API_KEY": "",
           "ENVIRONMENT": "development"}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "main.py", "ingest", "samples", str(data)],
                                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "samples: 3 added, 0 updated"
    assert "100%" in result.stderr and "3/3" in result.stderr
    assert (tmp_path / "data" / "embedded.lock").exists()
    assert len(await stored(make_settings(tmp_path), SAMPLES)) == 3
