"""Local aiohttp stand-in for NuGet's v3 search, registration and flat-container APIs."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODES = ("ok", "down500", "slow", "malformed")
UNLISTED_PUBLISHED = "1900-01-01T00:00:00+00:00"  # what nuget.org reports for unlisted versions

_MIT_TEXT = """MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, subject to the following conditions: ...
"""

_MEAI_README = """# Microsoft.Extensions.AI

Provides utilities for working with generative AI components such as `IChatClient`
and `IEmbeddingGenerator`, including middleware for caching, telemetry and tool calling.

## Install the package

```console
dotnet add package Microsoft.Extensions.AI
```

## Usage

```csharp
IChatClient client = new OpenAIClient(key).GetChatClient("gpt-4o-mini").AsIChatClient()
    .AsBuilder().UseFunctionInvocation().Build();
Console.WriteLine(await client.GetResponseAsync("What is AI?"));
```
"""

# Each package: versions are (version, downloads, published[, listed]) in ascending order, as NuGet pages
# are; "{v}" in a dependency range is replaced by the package's own version.
PACKAGES: list[dict[str, Any]] = [
    {
        "id": "LangChain",  # deliberately first and unverified with the most downloads: clients must re-rank
        "description": "C# implementation of LangChain. Build LLM-powered apps with chains, agents and RAG in .NET.",
        "authors": "tryAGI, LangChain .NET contributors",  # a string on purpose: NuGet sometimes sends one
        "owners": "HavenDV",
        "tags": "langchain openai ollama llm ai rag agents",
        "verified": False,
        "projectUrl": None,
        "iconUrl": None,
        "licenseFile": _MIT_TEXT.format(holder="2023 tryAGI"),
        "readme": "# LangChain for .NET\n\nChains, agents and retrieval for C#.\n",
        "deps": {"net8.0": [("LangChain.Core", "[{v}, )"), ("LangChain.Providers.OpenAI", "[{v}, )")]},
        "versions": [
            ("0.15.0", 21_000_000, "2024-08-02T10:11:12.5+00:00"),
            ("0.16.0", 32_000_000, "2024-11-20T09:00:00.12+00:00"),
            ("0.17.0", 38_500_000, "2025-03-14T16:45:03.837+00:00"),
        ],
    },
    {
        "id": "Microsoft.Extensions.AI",
        "description": "Utilities for working with generative AI components.",
        "tags": ["AI", "LLM", "ChatClient", "embeddings", "dotnet"],
        "license": "MIT",
        "readme": _MEAI_README,
        "deps": {
            "net9.0": [("Microsoft.Extensions.AI.Abstractions", "[{v}, )"),
                       ("Microsoft.Extensions.Caching.Abstractions", "[9.0.8, )")],
            "net8.0": [("Microsoft.Extensions.AI.Abstractions", "[{v}, )"),
                       ("Microsoft.Extensions.Caching.Abstractions", "[9.0.8, )"),
                       ("System.Text.Json", "[9.0.8, )")],
            ".NETStandard2.0": [("Microsoft.Extensions.AI.Abstractions", "[{v}, )"),
                                ("System.Diagnostics.DiagnosticSource", "[9.0.8, )"),
                                ("System.Text.Json", "[9.0.8, )")],
        },
        "versions": [
            ("9.0.0-preview.9.24525.1", 310_000, "2024-10-29T17:05:41.517+00:00"),
            ("9.0.1-preview.1.24570.5", 890_000, "2024-11-21T19:27:10.88+00:00"),
            ("9.3.0-preview.1.25161.3", 1_250_000, "2025-03-11T18:02:56.71+00:00"),
            ("9.5.0", 2_400_000, "2025-05-13T16:38:28.093+00:00"),
            ("9.6.0", 2_100_000, "2025-06-10T17:12:44.6+00:00"),
            ("9.7.0", 1_700_000, "2025-07-08T17:59:02.31+00:00"),
            ("9.7.1", 2_300_000, "2025-07-15T20:11:19.437+00:00"),
            ("9.8.0", 3_900_000, "2025-08-12T17:02:31.347+00:00"),
            ("10.0.0-rc.1.25451.107", 420_000, "2025-09-09T18:30:00.2+00:00"),
        ],
    },
    {
        "id": "Microsoft.Extensions.AI.OpenAI",
        "description": "Implementation of generative AI abstractions for OpenAI-compatible endpoints.",
        "tags": ["AI", "OpenAI", "ChatClient", "embeddings"],
        "license": "MIT",
        "readme": "# Microsoft.Extensions.AI.OpenAI\n\nAdapts `OpenAI.Chat.ChatClient` to `IChatClient`.\n",
        "deps": {"net8.0": [("Microsoft.Extensions.AI.Abstractions", "[9.8.0, )"), ("OpenAI", "[2.3.0, )")],
                 ".NETStandard2.0": [("Microsoft.Extensions.AI.Abstractions", "[9.8.0, )"), ("OpenAI", "[2.3.0, )")]},
        "versions": [  # only previews exist: "latest" must fall back to the newest prerelease
            ("9.5.0-preview.1.25265.7", 1_800_000, "2025-05-13T16:40:02.3+00:00"),
            ("9.6.0-preview.1.25310.2", 1_500_000, "2025-06-10T17:15:10.01+00:00"),
            ("9.7.1-preview.1.25365.4", 1_900_000, "2025-07-15T20:14:55.5+00:00"),
            ("9.8.0-preview.1.25412.6", 2_600_000, "2025-08-12T17:05:11.9+00:00"),
        ],
    },
    {
        "id": "Microsoft.SemanticKernel",
        "description": "Semantic Kernel common package collection, including SK Core, OpenAI, Azure OpenAI, DALL-E 2.",
        "tags": ["AI", "Artificial Intelligence", "SDK", "OpenAI", "LLM", "agents"],
        "projectUrl": "https://aka.ms/semantic-kernel",
        "license": "MIT",
        "readme": "# About Semantic Kernel\n\nSemantic Kernel is an SDK that integrates LLMs with C#.\n",
        "inline": False,  # pages must be fetched through their @id, like nuget.org does for big packages
        "deps": {"net8.0": [("Microsoft.SemanticKernel.Core", "[{v}, )"),
                            ("Microsoft.SemanticKernel.Connectors.AzureOpenAI", "[{v}, )")],
                 ".NETStandard2.0": [("Microsoft.SemanticKernel.Core", "[{v}, )"),
                                     ("Microsoft.SemanticKernel.Connectors.AzureOpenAI", "[{v}, )")]},
        "versions": [
            ("1.0.1", 1_900_000, "2023-12-14T18:20:41.55+00:00"),
            ("1.10.0", 2_200_000, "2024-05-01T14:03:10.1+00:00"),
            ("1.20.0", 2_600_000, "2024-09-18T12:47:09.2+00:00"),
            ("1.30.0", 2_900_000, "2024-11-20T11:31:05.73+00:00"),
            ("1.40.0", 3_100_000, "2025-02-26T16:10:44.04+00:00"),
            ("1.50.0", 2_800_000, "2025-05-07T15:22:18.6+00:00"),
            ("1.60.0", 2_400_000, "2025-07-08T13:58:20.9+00:00"),
            ("1.61.0", 1_900_000, "2025-07-22T10:02:33.12+00:00"),
            ("1.61.1", 1_000, UNLISTED_PUBLISHED, False),  # a pulled hotfix: newest stable, but unlisted
            ("1.62.0-alpha", 90_000, "2025-08-01T09:41:00.5+00:00"),
        ],
    },
    {
        "id": "Microsoft.SemanticKernel.Agents.Core",
        "description": "Defines the core set of concrete Agent and AgentChat classes, based on the Agent abstractions.",
        "tags": ["AI", "Artificial Intelligence", "SDK", "agents"],
        "projectUrl": "https://aka.ms/semantic-kernel",
        "license": "MIT",
        "deps": {"net8.0": [("Microsoft.SemanticKernel.Agents.Abstractions", "[{v}, )"),
                            ("Microsoft.SemanticKernel.Core", "[{v}, )")]},
        "versions": [
            ("1.30.0-alpha", 310_000, "2024-11-20T11:33:00.1+00:00"),
            ("1.40.0-preview", 640_000, "2025-02-26T16:12:30.3+00:00"),
            ("1.45.0", 900_000, "2025-04-08T15:00:12.7+00:00"),
            ("1.60.0", 1_100_000, "2025-07-08T14:01:02.8+00:00"),
            ("1.61.0", 800_000, "2025-07-22T10:04:40.9+00:00"),
        ],
    },
    {
        "id": "OpenAI",
        "description": "The official .NET library for the OpenAI service API.",
        "authors": ["OpenAI"],
        "owners": ["OpenAI", "Microsoft"],
        "tags": ["openai", "chatgpt", "gpt", "dall-e", "whisper"],
        "projectUrl": "https://github.com/openai/openai-dotnet",
        "license": "MIT",
        "readme": "# OpenAI .NET API library\n\n```csharp\nChatClient client = new(\"gpt-4o\", key);\n```\n",
        "deps": {"net8.0": [("System.ClientModel", "[1.5.1, )")],
                 ".NETStandard2.0": [("System.ClientModel", "[1.5.1, )"), ("System.Memory.Data", "[8.0.1, )")]},
        "versions": [
            ("2.0.0", 3_200_000, "2024-10-01T17:40:01.5+00:00"),
            ("2.1.0", 4_100_000, "2024-12-05T21:10:33.9+00:00"),
            ("2.2.0-beta.4", 900_000, "2025-03-18T18:00:00.0+00:00"),
            ("2.2.0", 3_500_000, "2025-06-24T20:31:14.3+00:00"),
            ("2.3.0", 4_700_000, "2025-08-05T17:45:09.6+00:00"),
        ],
    },
    {
        "id": "Azure.AI.OpenAI",
        "description": "Azure OpenAI's official extension package for using OpenAI's .NET library "
        "with the Azure OpenAI Service.",
        "tags": ["Azure", "OpenAI", "AI"],
        "projectUrl": "https://github.com/Azure/azure-sdk-for-net",
        "license": "MIT",
        "readme": "# Azure OpenAI client library for .NET\n",
        "deps": {"net8.0": [("Azure.Core", "[1.44.1, )"), ("OpenAI", "[2.1.0, )")]},
        "versions": [
            ("1.0.0-beta.17", 5_200_000, "2024-05-03T22:01:09.8+00:00"),
            ("2.0.0", 6_100_000, "2024-10-01T19:22:40.1+00:00"),
            ("2.1.0", 7_300_000, "2024-12-05T23:04:11.2+00:00"),
            ("2.2.0-beta.5", 800_000, "2025-07-16T18:55:00.4+00:00"),
        ],
    },
    {
        "id": "Microsoft.ML",
        "description": "ML.NET is a cross-platform open-source machine learning framework for .NET developers.",
        "tags": ["ML.NET", "machine learning", "ai"],
        "projectUrl": "https://dot.net/ml",
        "license": "MIT",
        "readme": None,  # no README: /readme must answer 404
        "deps": {"netstandard2.0": [("Microsoft.ML.CpuMath", "[{v}, )"), ("Microsoft.ML.DataView", "[{v}, )")]},
        "versions": [
            ("3.0.1", 9_000_000, "2024-02-13T19:00:00.0+00:00"),
            ("4.0.0", 5_100_000, "2024-11-12T18:30:00.0+00:00"),
            ("4.0.2", 3_300_000, "2025-02-11T18:30:00.0+00:00"),
            ("5.0.0-preview.1.25125.4", 200_000, "2025-03-04T18:30:00.0+00:00"),
        ],
    },
    {
        "id": "Microsoft.ML.OnnxRuntime",
        "description": "This package contains native shared library artifacts for all supported platforms "
        "of ONNX Runtime.",
        "tags": ["ONNX", "ONNX Runtime", "AI", "machine learning"],
        "projectUrl": "https://github.com/microsoft/onnxruntime",
        "licenseFile": _MIT_TEXT.format(holder="Microsoft Corporation"),
        "deps": {"any": [("Microsoft.ML.OnnxRuntime.Managed", "[{v}, )")]},
        "versions": [
            ("1.20.1", 6_500_000, "2024-11-21T01:00:00.0+00:00"),
            ("1.21.0", 5_900_000, "2025-03-08T01:00:00.0+00:00"),
            ("1.22.0", 4_800_000, "2025-05-09T01:00:00.0+00:00"),
            ("1.22.1", 2_100_000, "2025-07-10T01:00:00.0+00:00"),
        ],
    },
    {
        "id": "Microsoft.Extensions.AI.Templates",
        "description": "Project templates for building AI chat apps with Microsoft.Extensions.AI.",
        "tags": ["dotnet-new", "templates", "AI"],
        "packageTypes": ["Template"],
        "license": "MIT",
        "deps": {},
        "versions": [("9.7.1-preview.1.25365.4", 120_000, "2025-07-15T20:20:00.0+00:00")],
    },
    {
        "id": "Contoso.OpenAI.Helpers",
        "description": "Small community helpers for calling OpenAI from C#.",
        "authors": ["Contoso Community"],
        "owners": ["contoso-dev"],
        "tags": ["openai", "helpers"],
        "verified": False,
        "projectUrl": None,
        "iconUrl": None,
        "deps": {"net8.0": [("OpenAI", "[2.0.0, )")]},
        "versions": [("1.0.0", 7_000, "2024-12-01T08:00:00.0+00:00"), ("1.1.0", 5_345, "2025-02-01T08:00:00.0+00:00")],
    },
]
_BY_ID = {p["id"].lower(): p for p in PACKAGES}


@dataclass
class RecordedRequest:
    """One request the stand-in received."""

    path: str
    query: dict[str, str]


@dataclass
class StandinState:
    """Mutable per-server settings; tests may flip `mode` while the server runs."""

    mode: str = "ok"
    slow_seconds: float = 3.0
    requests: list[RecordedRequest] = field(default_factory=list)


STATE_KEY = web.AppKey("nuget_standin_state", StandinState)


def _is_pre(version: str) -> bool:
    return "-" in version


def _listed(pkg: dict[str, Any]) -> list[tuple]:
    return [v for v in pkg["versions"] if len(v) < 4 or v[3]]


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _json(request: web.Request, payload: Any, *, gzip: bool = False) -> web.Response:
    if request.app[STATE_KEY].mode == "malformed":  # a truncated body, as from a proxy that cut the stream
        return web.Response(text='{"totalHits": 3, "data": [{"id": "Microsoft.Ext', content_type="application/json")
    resp = web.json_response(payload)
    if gzip:  # the real registration5-gz-semver2 hive is always served gzip-encoded
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


def _matches(pkg: dict[str, Any], q: str) -> bool:
    tags = pkg.get("tags", [])
    hay = " ".join([pkg["id"], pkg["description"], tags if isinstance(tags, str) else " ".join(tags)]).lower()
    return all(term in hay for term in q.lower().split())


def _search_entry(origin: str, pkg: dict[str, Any], versions: list[tuple]) -> dict[str, Any]:
    pid, lower, latest = pkg["id"], pkg["id"].lower(), versions[-1][0]
    reg = f"{origin}/registration/{lower}/index.json"
    entry = {
        "@id": reg, "@type": "Package", "registration": reg, "id": pid, "version": latest,
        "description": pkg["description"], "summary": "", "title": pid,
        "iconUrl": f"{origin}/flat/{lower}/{latest.lower()}/icon",
        "licenseUrl": f"https://www.nuget.org/packages/{pid}/{latest}/license",
        "projectUrl": pkg.get("projectUrl", "https://dot.net/"),
        "tags": pkg.get("tags", []), "authors": pkg.get("authors", ["Microsoft"]),
        "owners": pkg.get("owners", ["Microsoft", "aspnet", "dotnetframework"]),
        "totalDownloads": sum(v[1] for v in _listed(pkg)), "verified": pkg.get("verified", True),
        "packageTypes": [{"name": n} for n in pkg.get("packageTypes", ["Dependency"])],
        "versions": [{"version": v[0], "downloads": v[1], "@id": f"{origin}/registration/{lower}/{v[0].lower()}.json"}
                     for v in versions],
        "vulnerabilities": [],
    }
    for key in ("projectUrl", "iconUrl"):  # some community packages simply omit these
        if key in pkg and pkg[key] is None:
            del entry[key]
    return entry


async def _search(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    prerelease = request.query.get("prerelease", "false").lower() == "true"
    package_type = request.query.get("packageType", "").lower()
    take, skip = int(request.query.get("take", "20")), int(request.query.get("skip", "0"))
    hits = []
    for pkg in PACKAGES:
        versions = [v for v in _listed(pkg) if prerelease or not _is_pre(v[0])]
        types = [t.lower() for t in pkg.get("packageTypes", ["Dependency"])]
        if versions and _matches(pkg, q) and (not package_type or package_type in types):
            hits.append(_search_entry(_origin(request), pkg, versions))
    payload = {
        "@context": {"@vocab": "http://schema.nuget.org/schema#", "@base": f"{_origin(request)}/registration/"},
        "totalHits": len(hits),
        "data": hits[skip : skip + take],
    }
    return _json(request, payload)


def _leaf(origin: str, pkg: dict[str, Any], version: tuple) -> dict[str, Any]:
    pid, lower, (ver, _, published, *rest) = pkg["id"], pkg["id"].lower(), version
    reg, vl = f"{origin}/registration/{lower}", ver.lower()
    expression, authors = pkg.get("license"), pkg.get("authors", ["Microsoft"])
    groups = [
        {"@id": f"{origin}/catalog/{lower}.{vl}.json#dependencygroup/{tfm}", "@type": "PackageDependencyGroup",
         "dependencies": [{"@id": f"{origin}/catalog/{lower}.{vl}.json#dependency/{d}", "@type": "PackageDependency",
                           "id": d, "range": r.format(v=ver), "registration": f"{reg}/{d.lower()}/index.json"}
                          for d, r in deps],
         **({} if tfm == "any" else {"targetFramework": tfm})}
        for tfm, deps in pkg.get("deps", {}).items()
    ]
    return {
        "@id": f"{reg}/{vl}.json", "@type": "Package", "commitTimeStamp": published,
        "catalogEntry": {
            "@id": f"{origin}/catalog/{lower}.{vl}.json", "@type": "PackageDetails",
            "authors": authors if isinstance(authors, str) else ", ".join(authors),  # a string in registration
            "dependencyGroups": groups, "description": pkg["description"],
            "iconUrl": f"{origin}/flat/{lower}/{vl}/icon", "id": pid, "language": "",
            "licenseExpression": expression or "",
            "licenseUrl": f"https://licenses.nuget.org/{expression}" if expression
            else f"https://www.nuget.org/packages/{pid}/{ver}/license",
            "listed": not rest or rest[0], "minClientVersion": "",
            "packageContent": f"{origin}/flat/{lower}/{vl}/{lower}.{vl}.nupkg",
            "projectUrl": pkg.get("projectUrl", "https://dot.net/") or "", "published": published,
            "requireLicenseAcceptance": False, "summary": "", "tags": pkg.get("tags", []), "title": "", "version": ver,
        },
        "packageContent": f"{origin}/flat/{lower}/{vl}/{lower}.{vl}.nupkg",
        "registration": f"{reg}/index.json",
    }


def _page(origin: str, pkg: dict[str, Any], versions: list[tuple], inline: bool) -> dict[str, Any]:
    lower, lo, hi = pkg["id"].lower(), versions[0][0].lower(), versions[-1][0].lower()
    index = f"{origin}/registration/{lower}/index.json"
    page = {"@id": f"{origin}/registration/{lower}/page/{lo}/{hi}.json" if not inline else f"{index}#page/{lo}/{hi}",
            "@type": "catalog:CatalogPage", "count": len(versions), "lower": lo, "upper": hi}
    if inline:
        page |= {"items": [_leaf(origin, pkg, v) for v in versions], "parent": index}
    return page


def _chunks(pkg: dict[str, Any]) -> list[list[tuple]]:
    size = 5 if pkg.get("inline", True) is False else len(pkg["versions"])
    return [pkg["versions"][i : i + size] for i in range(0, len(pkg["versions"]), size)]


async def _registration_index(request: web.Request) -> web.Response:
    pkg = _BY_ID.get(request.match_info["id"].lower())
    if pkg is None:
        return web.Response(status=404, text="<Error><Code>BlobNotFound</Code></Error>", content_type="application/xml")
    inline = pkg.get("inline", True)
    pages = [_page(_origin(request), pkg, chunk, inline) for chunk in _chunks(pkg)]
    payload = {"@id": str(request.url), "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
               "count": len(pages), "items": pages}
    return _json(request, payload, gzip=True)


async def _registration_page(request: web.Request) -> web.Response:
    pkg = _BY_ID.get(request.match_info["id"].lower())
    lo, hi = request.match_info["lower"], request.match_info["upper"]
    for chunk in _chunks(pkg) if pkg else []:
        if (chunk[0][0].lower(), chunk[-1][0].lower()) == (lo, hi):
            page = _page(_origin(request), pkg, chunk, inline=True)
            page["@id"] = str(request.url)
            return _json(request, page, gzip=True)
    return web.Response(status=404, text="<Error><Code>BlobNotFound</Code></Error>", content_type="application/xml")


def _flat_text(request: web.Request, key: str) -> web.Response:
    pkg = _BY_ID.get(request.match_info["id"].lower())
    version = request.match_info["version"].lower()
    text = pkg.get(key) if pkg and any(v[0].lower() == version for v in pkg["versions"]) else None
    if text is None:
        return web.Response(status=404, text="<Error><Code>BlobNotFound</Code></Error>", content_type="application/xml")
    return web.Response(text=text, content_type="text/markdown" if key == "readme" else "text/plain")


async def _readme(request: web.Request) -> web.Response:
    return _flat_text(request, "readme")


async def _license(request: web.Request) -> web.Response:
    return _flat_text(request, "licenseFile")


async def _flat_index(request: web.Request) -> web.Response:
    pkg = _BY_ID.get(request.match_info["id"].lower())
    if pkg is None:
        return web.Response(status=404, text="<Error><Code>BlobNotFound</Code></Error>", content_type="application/xml")
    return _json(request, {"versions": [v[0].lower() for v in pkg["versions"]]})


@web.middleware
async def _failure_modes(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    state.requests.append(RecordedRequest(path=request.path, query=dict(request.query)))
    if state.mode == "down500":
        return web.Response(status=500, text="Internal Server Error")
    if state.mode == "slow":
        await asyncio.sleep(state.slow_seconds)  # cancelled when the client gives up (handler_cancellation)
    return await handler(request)


def create_app(mode: str = "ok", *, slow_seconds: float = 3.0) -> web.Application:
    """Build the stand-in application (mode: ok, down500, slow or malformed)."""
    if mode not in MODES:
        raise ValueError(f"unknown stand-in mode {mode!r}; expected one of {MODES}")
    app = web.Application(middlewares=[_failure_modes])
    app[STATE_KEY] = StandinState(mode=mode, slow_seconds=slow_seconds)
    app.router.add_get("/query", _search)
    app.router.add_get("/registration/{id}/index.json", _registration_index)
    app.router.add_get("/registration/{id}/page/{lower}/{upper}.json", _registration_page)
    app.router.add_get("/flat/{id}/index.json", _flat_index)
    app.router.add_get("/flat/{id}/{version}/readme", _readme)
    app.router.add_get("/flat/{id}/{version}/license", _license)
    return app


async def start_nuget_standin(mode: str = "ok", *, slow_seconds: float = 3.0) -> tuple[str, web.AppRunner]:
    """Start a stand-in on 127.0.0.1 with a free port; returns (base_url, runner)."""
    # handler_cancellation stops "slow" handlers when the client times out, so cleanup is quick.
    runner = web.AppRunner(create_app(mode, slow_seconds=slow_seconds), handler_cancellation=True,
                           shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}", runner


async def stop_nuget_standin(runner: web.AppRunner) -> None:
    """Stop a stand-in started by start_nuget_standin."""
    await runner.cleanup()


def standin_state(runner: web.AppRunner) -> StandinState:
    """Mode, slow delay and recorded requests of a running stand-in."""
    return runner.app[STATE_KEY]


def client_urls(base_url: str) -> dict[str, Any]:
    """NuGetClient keyword arguments pointing at a stand-in."""
    return {"search_urls": [f"{base_url}/query"], "registration_base_url": f"{base_url}/registration/",
            "flat_container_url": f"{base_url}/flat/"}


def closed_port_url() -> str:
    """Base URL of a local port nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class NuGetStandin:
    """A running stand-in: URLs, state and recorded requests."""

    base_url: str
    runner: web.AppRunner

    @property
    def search_url(self) -> str:
        return f"{self.base_url}/query"

    @property
    def registration_base_url(self) -> str:
        return f"{self.base_url}/registration/"

    @property
    def flat_container_url(self) -> str:
        return f"{self.base_url}/flat/"

    @property
    def state(self) -> StandinState:
        return standin_state(self.runner)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    def client_kwargs(self) -> dict[str, Any]:
        return client_urls(self.base_url)


@asynccontextmanager
async def nuget_standin(mode: str = "ok", *, slow_seconds: float = 3.0) -> AsyncIterator[NuGetStandin]:
    """Run a stand-in for the duration of an `async with` block."""
    base_url, runner = await start_nuget_standin(mode, slow_seconds=slow_seconds)
    try:
        yield NuGetStandin(base_url, runner)
    finally:
        await stop_nuget_standin(runner)
