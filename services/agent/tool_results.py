"""Typed tool results: what a tool found (sources) or why it failed, handed from tools to the run.

Our own tools record a `ToolResult` in the run context under their call id, so the stream reads
typed objects. MCP tools are not ours: their output (content parts) is read by `from_output`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from services.core.urls import http_url


@dataclass(frozen=True)
class Source:
    """A citable result: title, http(s) URL and, for ranked results, the relevance (0-1)."""

    title: str
    url: str
    score: float | None = None

    def as_dict(self) -> dict:
        return {"title": self.title, "url": self.url, "score": self.score}


@dataclass
class ToolResult:
    """One tool call's outcome: raw result records (for answer composition), or an error for a person."""

    tool: str
    results: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def sources(self) -> list[Source]:
        """One source per distinct URL, in result order, with the best score seen for it."""
        by_url: dict[str, Source] = {}
        for result in self.results:
            url = http_url(result.get("url"))  # a stored chunk's address may predate the http(s) check
            if url is None:
                continue
            score = result.get("score")
            score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
            known = by_url.get(url)
            if known is None:
                by_url[url] = Source(title=str(result.get("title") or url), url=url, score=score)
            elif score is not None and (known.score is None or score > known.score):
                by_url[url] = Source(title=known.title, url=url, score=score)
        return list(by_url.values())


def collect_links(data: object) -> list[dict]:
    """Every object in `data` that carries an http(s) URL, normalised to {title, url, ...}."""
    found: list[dict] = []
    stack = [data]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            url = node.get("url") or node.get("contentUrl") or node.get("source_url") or node.get("link")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                item = dict(node)
                item["url"] = url
                item["title"] = str(node.get("title") or node.get("id") or url)
                found.append(item)
                continue
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def from_output(tool: str, output: object) -> ToolResult:
    """Read a tool's text output (our JSON, or MCP content parts) into a `ToolResult`."""
    text = output
    if isinstance(output, list):  # MCP content parts
        text = "\n".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in output)
    if not isinstance(text, str):
        text = json.dumps(text)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return ToolResult(tool=tool, results=[], error=None if text.strip() else "empty output")
    if isinstance(data, dict) and "type" in data and "text" in data:  # a single MCP text part
        return from_output(tool, data["text"])
    if isinstance(data, dict) and data.get("error"):
        return ToolResult(tool=tool, error=str(data["error"]))
    return ToolResult(tool=tool, results=collect_links(data))
