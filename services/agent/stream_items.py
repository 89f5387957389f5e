"""Reading the Agents SDK's stream events into our run events: text, tool calls (ours, MCP's and the hosted
web search) and their results, with the texts a person sees."""

from __future__ import annotations

import json

from services.agent.context import ChatContext
from services.agent.events import RunEvent, TextDelta, ToolFinished, ToolStarted
from services.agent.tool_results import Source, ToolResult, from_output

WEB_SEARCH = "web_search"
_TOOL_TEXT = {
    "search_knowledge_base": "Searching the knowledge base for “{q}”…",
    "read_kb_article": "Reading the best-matching article in full…",
    "search_nuget_packages": "Looking up NuGet packages for “{q}”…",
    "get_nuget_package_details": "Reading NuGet package details for “{q}”…",
    WEB_SEARCH: "Searching the web for “{q}”…",
}


def tool_call_text(name: str, arguments: str | None) -> str:
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        args = {}
    query = next((str(v) for v in args.values() if isinstance(v, str)), "") if isinstance(args, dict) else ""
    template = _TOOL_TEXT.get(name)
    if template:
        return template.format(q=query[:120])
    return f"Consulting {name.replace('_', ' ')}" + (f" for “{query[:120]}”…" if query else "…")


def tool_output_text(found: list[Source], error: str | None) -> str:
    if error:
        return "The lookup failed: " + error[:200]
    if not found:
        return "No matching results"
    return f"Found {len(found)} result{'s' if len(found) != 1 else ''}"


def field_of(raw: object, key: str):
    """A field of an SDK item's raw payload, which is a pydantic object or a plain dict."""
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def url_citations(message: object) -> list[Source]:
    """The `url_citation` annotations of an output message (hosted web search results the answer cites)."""
    found: dict[str, Source] = {}
    for part in field_of(message, "content") or []:
        for note in field_of(part, "annotations") or []:
            url = field_of(note, "url")
            if field_of(note, "type") == "url_citation" and isinstance(url, str) and url.startswith(("http://", "https://")):
                found.setdefault(url, Source(title=str(field_of(note, "title") or url), url=url))
    return list(found.values())


class StreamReader:
    """One run's reader: SDK events in, our events out; remembers the answer, the sources and tool outputs."""

    def __init__(self, context: ChatContext) -> None:
        self.context = context
        self.answer: list[str] = []
        self.sources: dict[str, Source] = {}
        self.tool_outputs = 0
        self._call_names: dict[str | None, str] = {}
        self._web_calls: set[str] = set()
        self._web_open = False  # a web search started and its citations are not shown yet

    def read(self, event) -> list[RunEvent]:
        if event.type == "raw_response_event":
            data = event.data
            kind = getattr(data, "type", "")
            if kind == "response.output_text.delta" and data.delta:
                self.answer.append(data.delta)
                return [TextDelta(data.delta)]
            # The hosted search's run item arrives after the whole answer: announce it when the model runs it.
            if kind == "response.output_item.done" and field_of(data.item, "type") == "web_search_call":
                return self._web_search(data.item)
            return []
        if event.type != "run_item_stream_event":
            return []
        raw = event.item.raw_item
        if event.name == "tool_called":
            if field_of(raw, "type") == "web_search_call":
                return self._web_search(raw)
            name, arguments = field_of(raw, "name") or "tool", field_of(raw, "arguments")
            self._call_names[field_of(raw, "call_id")] = name
            return [ToolStarted(name=name, arguments=arguments, text=tool_call_text(name, arguments))]
        if event.name == "tool_output":
            call_id = field_of(raw, "call_id")
            name = self._call_names.get(call_id, "")
            return [self._finished(name, self.context.tool_results.get(call_id) or from_output(name, event.item.output))]
        if event.name == "message_output_created":
            cited = url_citations(raw)
            if self._web_open or cited:
                self._web_open = False
                return [self._finished(WEB_SEARCH, ToolResult(tool=WEB_SEARCH,
                                                              results=[s.as_dict() for s in cited]))]
        return []

    def _web_search(self, raw: object) -> list[RunEvent]:
        item_id = str(field_of(raw, "id") or "")
        if item_id in self._web_calls:
            return []
        self._web_calls.add(item_id)
        self._web_open = True
        action = field_of(raw, "action")
        query = field_of(action, "query") or field_of(action, "url") or ""
        arguments = json.dumps({"query": query}, ensure_ascii=False) if query else None
        text = tool_call_text(WEB_SEARCH, arguments) if query else "Searching the web…"
        return [ToolStarted(name=WEB_SEARCH, arguments=arguments, text=text)]

    def _finished(self, name: str, found: ToolResult) -> ToolFinished:
        self.tool_outputs += 1
        listed = found.sources
        for source in listed:
            self.sources.setdefault(source.url, source)
        return ToolFinished(name=name, sources=listed, error=found.error, text=tool_output_text(listed, found.error))
