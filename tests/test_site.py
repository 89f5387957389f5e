"""The chat page is served by the app, the JSON endpoint map stays reachable, and /api/config tells the mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.utils.app import quick_settings, running_app

STATIC = Path(__file__).resolve().parent.parent / "static"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def site_settings(tmp_path):
    # The page and the config need no knowledge base: skip seeding to keep startup short.
    return quick_settings(tmp_path)


async def test_browser_gets_the_chat_page_at_root(site_settings):
    async with running_app(site_settings) as client:
        response = await client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<textarea id="question"' in html
    assert '<label for="question"' in html
    assert 'src="/static/app.js"' in html and 'src="/static/markdown.js"' in html
    assert 'href="/static/style.css"' in html


@pytest.mark.parametrize("accept", ["application/json", "*/*", None])
async def test_api_clients_still_get_the_json_map_at_root(site_settings, accept):
    headers = {"Accept": accept} if accept else {}
    async with running_app(site_settings) as client:
        if accept is None:
            client.headers.pop("accept", None)
        response = await client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["message"] == "C# AI Buddy API"


async def test_json_map_is_at_api_even_for_browsers(site_settings):
    async with running_app(site_settings) as client:
        response = await client.get("/api", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.json()["message"] == "C# AI Buddy API"


async def test_endpoint_map_lists_the_api_routes(site_settings):
    async with running_app(site_settings) as client:
        endpoints = (await client.get("/api")).json()["endpoints"]
    assert endpoints["/api/chat"] == "POST"
    assert endpoints["/api/config"] == "GET"
    assert endpoints["/"] == "GET"


async def test_static_assets_are_served_with_their_types(site_settings):
    expected = {"app.js": "javascript", "markdown.js": "javascript", "style.css": "text/css", "index.html": "text/html"}
    async with running_app(site_settings) as client:
        for name, kind in expected.items():
            response = await client.get(f"/static/{name}")
            assert response.status_code == 200, name
            assert kind in response.headers["content-type"], (name, response.headers["content-type"])
            assert response.content == (STATIC / name).read_bytes()
        missing = await client.get("/static/nope.js")
    assert missing.status_code == 404


async def test_page_loads_nothing_from_other_origins(site_settings):
    async with running_app(site_settings) as client:
        html = (await client.get("/", headers={"Accept": "text/html"})).text
        urls = re.findall(r'\b(?:src|href)="([^"]+)"', html)
        assert urls, "the page references its assets"
        for url in urls:
            assert url.startswith(("/static/", "#", "data:")), url
            if url.startswith("/static/"):
                assert (await client.get(url)).status_code == 200, url
    assert "Content-Security-Policy" in html


async def test_config_in_development(site_settings):
    async with running_app(site_settings) as client:
        response = await client.get("/api/config")
    assert response.status_code == 200
    assert response.json() == {"environment": "development", "requires_key": False}


@pytest.mark.parametrize("environment", ["production", "staging"])
async def test_config_in_production_requires_a_key(tmp_path, environment):
    # Unknown ENVIRONMENT values mean production (CONVENTIONS §5).
    settings = quick_settings(tmp_path, environment=environment)
    async with running_app(settings) as client:
        response = await client.get("/api/config")
        chat = await client.post("/api/chat", json={"message": "hello"})
    assert response.json() == {"environment": "production", "requires_key": True}
    assert chat.status_code == 401  # what the page reacts to by asking for the key


def test_page_script_only_writes_html_from_the_markdown_renderer():
    # The one innerHTML in app.js takes Markdown.render's output, which escapes everything first.
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    writes = re.findall(r"(innerHTML|outerHTML|insertAdjacentHTML|document\.write)\s*(\+?=|\()\s*([^;\n]*)", script)
    assert writes == [("innerHTML", "=", "window.Markdown.render(this.text)")]
