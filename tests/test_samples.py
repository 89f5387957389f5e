"""GET /api/samples, /api/samples/tags and /api/samples/{id} over HTTP on the embedded engine."""

from __future__ import annotations

import time

import pytest

from services.storage.database import SAMPLES
from services.content.samples import get_sample, list_samples, sample_tags
from tests.utils.app import quick_settings
from tests.utils.content import content_app, sample_doc


@pytest.fixture
def settings(tmp_path):
    return quick_settings(tmp_path)


async def test_pages_in_title_order_with_totals_and_empty_pages_past_the_end(settings):
    async with content_app(settings) as (client, services):
        await services.database[SAMPLES].insert_many([sample_doc(n) for n in reversed(range(23))])
        first = (await client.get("/api/samples", params={"page_size": 10})).json()
        assert [s["id"] for s in first["samples"]] == [f"sample-{n:05d}" for n in range(10)]
        assert (first["total"], first["page"], first["pages"], first["page_size"]) == (23, 1, 3, 10)
        assert first["samples"][0] == sample_doc(0)
        last = (await client.get("/api/samples", params={"page": 3, "page_size": 10})).json()
        assert len(last["samples"]) == 3
        past = (await client.get("/api/samples", params={"page": 9, "page_size": 10})).json()
        assert past == {"samples": [], "total": 23, "page": 9, "pages": 3, "page_size": 10}
        default = (await client.get("/api/samples")).json()
        assert default["page"] == 1 and default["page_size"] == 20 and len(default["samples"]) == 20


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"page": "one"},
                                    {"tags": "x" * 2001}])
async def test_bad_parameters_are_422(settings, params):
    async with content_app(settings) as (client, _):
        assert (await client.get("/api/samples", params=params)).status_code == 422


async def test_tags_filter_matches_any_and_tags_are_sorted_unique(settings):
    docs = [
        sample_doc(1, tags=["RAG", "Semantic Kernel"]),
        sample_doc(2, tags=["MCP"]),
        sample_doc(3, tags=["rag", "Agents"]),
        sample_doc(4, tags=[]),
        sample_doc(5, tags="Blazor"),  # an odd document: one string instead of a list
    ]
    async with content_app(settings) as (client, services):
        await services.database[SAMPLES].insert_many(docs)

        async def ids(**params) -> list[str]:
            response = await client.get("/api/samples", params=params)
            assert response.status_code == 200, response.text
            return [s["id"] for s in response.json()["samples"]]

        assert await ids(tags="RAG") == ["sample-00001"]
        assert await ids(tags="RAG,MCP") == ["sample-00001", "sample-00002"]
        assert await ids(tags=" MCP , rag ,,") == ["sample-00002", "sample-00003"]
        assert await ids(tags="Blazor") == ["sample-00005"]
        assert await ids(tags="Nope") == []
        assert await ids(tags="RAG,Agents", search="sample 3") == ["sample-00003"]
        assert await ids(tags=",") == [f"sample-0000{n}" for n in range(1, 6)]
        tags = (await client.get("/api/samples/tags")).json()
        assert tags == {"tags": ["Agents", "Blazor", "MCP", "RAG", "rag", "Semantic Kernel"]}
        blazor = (await client.get("/api/samples/sample-00005")).json()
        assert blazor["tags"] == ["Blazor"]


async def test_search_is_literal_and_covers_title_description_author_tags(settings):
    docs = [
        sample_doc(1, title="Calling C++ from C#", description="interop"),
        sample_doc(2, description="Patterns like .* and ( or [ appear here"),
        sample_doc(3, author="Grace (Hopper)"),
        sample_doc(4, tags=["Function Calling"], preview="c++ only in the preview"),
        sample_doc(5, source="https://example.com/c++", title="Ünïcode Sample"),
    ]
    async with content_app(settings) as (client, services):
        await services.database[SAMPLES].insert_many(docs)

        async def ids(search: str) -> list[str]:
            response = await client.get("/api/samples", params={"search": search})
            assert response.status_code == 200, response.text
            return [s["id"] for s in response.json()["samples"]]

        assert await ids("C++") == ["sample-00001"]
        assert await ids(".*") == ["sample-00002"]
        assert await ids("(") == ["sample-00002", "sample-00003"]  # description, author
        assert await ids("[") == ["sample-00002"]
        assert await ids("hopper)") == ["sample-00003"]
        assert await ids("function call") == ["sample-00004"]
        assert await ids("ÜNÏCODE") == ["sample-00005"]
        assert await ids("\\d+") == []
        started = time.perf_counter()
        response = await client.get("/api/samples", params={"search": "[" * 10_000})
        assert response.status_code == 200 and response.json()["total"] == 0
        assert time.perf_counter() - started < 2.0


async def test_one_sample_by_id_or_404(settings):
    async with content_app(settings) as (client, services):
        await services.database[SAMPLES].insert_one(sample_doc(7))
        no_id = await services.database[SAMPLES].insert_one({"title": "Legacy sample without id"})
        response = await client.get("/api/samples/sample-00007")
        assert response.status_code == 200 and response.json() == sample_doc(7)
        missing = await client.get("/api/samples/does-not-exist")
        assert missing.status_code == 404 and missing.json() == {"detail": "Sample not found"}
        legacy = await client.get(f"/api/samples/{no_id.inserted_id}")
        assert legacy.status_code == 200
        assert legacy.json() == {"id": str(no_id.inserted_id), "title": "Legacy sample without id", "description": "",
                                 "preview": "", "authorUrl": "", "author": "", "source": "", "tags": []}
        assert (await client.get("/api/samples/" + "x" * 300)).status_code == 422
        assert (await client.get("/api/samples/tags")).status_code == 200  # not taken for an id


async def test_snapshot_and_server_queries_agree(settings):
    docs = [sample_doc(n, title=f"Sample {n % 9}", tags=[f"T{n % 4}", "All"]) for n in range(30)]
    docs += [{"title": "Odd", "tags": "T1"}, {"id": "no-title", "tags": [1, None, "T2"]}]
    async with content_app(settings) as (client, services):
        await services.database[SAMPLES].insert_many(docs)
        view = services.content.samples
        assert view is not None  # the embedded engine has the in-memory view: compare it, not None with None
        database = services.database
        for search in (None, "sample 1", "t3", "zzz"):
            for tags in (None, "T1", "T0,T2", "All"):
                for page, size in ((1, 4), (3, 4), (1, 100)):
                    kwargs = dict(database=database, page=page, page_size=size, search=search, tags=tags)
                    assert await list_samples(view=view, **kwargs) == await list_samples(view=None, **kwargs)
        assert await sample_tags(database=database, view=view) == await sample_tags(database=database, view=None)
        for sample_id in ("sample-00003", "no-title", "missing"):
            assert (await get_sample(database=database, view=view, sample_id=sample_id)
                    == await get_sample(database=database, view=None, sample_id=sample_id))


async def test_seeded_gallery_is_served(settings):
    from services.content.setup import seed_content

    async with content_app(settings) as (client, services):
        report = await seed_content(database=services.database)
        assert report.samples_added >= 30
        page = (await client.get("/api/samples", params={"page_size": 100})).json()
        assert page["total"] == report.samples_added
        tags = (await client.get("/api/samples/tags")).json()["tags"]
        assert tags == sorted(set(tags), key=lambda t: (t.lower(), t)) and len(tags) >= 5
        for sample in page["samples"]:
            assert sample["title"] and sample["description"] and sample["source"].startswith("https://")
            assert (await client.get(f"/api/samples/{sample['id']}")).json() == sample
