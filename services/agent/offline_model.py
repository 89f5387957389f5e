"""The offline grounded model: an Agents SDK `Model` that needs no network and no weights.

First turn: it asks the real `Runner` to call the tools (knowledge base always; NuGet when the
question is about a package; MCP search tools when connected). Second turn: it reads the best
relevant article in full (`read_kb_article`), because the search returns at most two passages per
article. Last turn: it streams an answer composed by `services.agent.grounded_answer` from exactly
what those tools returned.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any, AsyncIterator

from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)

import services.agent.grounded_answer as ga
from services.agent.tool_results import from_output

MODEL_NAME = "offline-grounded"
_DELTA_RE = re.compile(r"\S+\s*|\s+")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _conversation(items: list[dict]) -> tuple[str, list[str], list[dict]]:
    """(last user message, earlier user messages, items after the last user message)."""
    last = max((i for i, it in enumerate(items) if it.get("role") == "user"), default=-1)
    if last < 0:
        return "", [], items
    earlier = [_text_of(it.get("content")) for it in items[:last] if it.get("role") == "user"]
    return _text_of(items[last].get("content")), earlier, items[last + 1 :]


def _tool_names(tools: list) -> list[str]:
    return [getattr(t, "name", "") for t in tools]


def _first_string_arg(tool) -> tuple[str | None, dict]:
    schema = getattr(tool, "params_json_schema", {}) or {}
    props = schema.get("properties", {})
    required = schema.get("required", list(props))
    name = next((p for p in required if props.get(p, {}).get("type") == "string"), None)
    return name, props


class OfflineGroundedModel(Model):
    """Calls the tools, then streams a cited extractive answer (or says it does not know)."""

    def __init__(self, *, min_relevance: float = 0.35, delay_seconds: float = 0.0) -> None:
        self.min_relevance = min_relevance
        self.delay_seconds = delay_seconds

    def plan_tool_calls(self, message: str, earlier: list[str], tools: list) -> list[ResponseFunctionToolCall]:
        names = _tool_names(tools)
        query = ga.retrieval_query(message, earlier)
        calls: list[tuple[str, dict]] = []
        if "search_knowledge_base" in names:
            calls.append(("search_knowledge_base", {"query": query, "prefer_code": ga.wants_code(message)}))
        if "search_nuget_packages" in names and ga.looks_like_package_question(message):
            calls.append(("search_nuget_packages", {"query": ga.package_query(message)}))
        for tool in tools:
            name = getattr(tool, "name", "")
            if name in ("search_knowledge_base", "search_nuget_packages") or "search" not in name.lower():
                continue
            arg, _props = _first_string_arg(tool)
            if arg:
                calls.append((name, {arg: query}))
        return [
            ResponseFunctionToolCall(id=f"fc_{uuid.uuid4().hex[:16]}", call_id=f"call_{uuid.uuid4().hex[:16]}",
                                     type="function_call", name=name, arguments=json.dumps(args), status="completed")
            for name, args in calls
        ]

    def plan_read(self, results: list, tools: list, *, called: set[str]) -> list[ResponseFunctionToolCall]:
        """Second turn: read the best relevant article in full (its answer may be in a passage not returned)."""
        if "read_kb_article" not in _tool_names(tools) or "read_kb_article" in called:
            return []
        kb = [r for tr in results if tr.tool == "search_knowledge_base" for r in tr.results
              if float(r.get("score", 0.0)) >= self.min_relevance]
        if not kb:
            return []
        best = max(kb, key=lambda r: float(r.get("score", 0.0)))
        args = {"url": best["url"]}
        return [ResponseFunctionToolCall(id=f"fc_{uuid.uuid4().hex[:16]}", call_id=f"call_{uuid.uuid4().hex[:16]}",
                                         type="function_call", name="read_kb_article", arguments=json.dumps(args),
                                         status="completed")]

    def _turn_output(self, input: str | list, tools: list) -> list:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else [
            it if isinstance(it, dict) else it.model_dump() for it in input
        ]
        message, earlier, after = _conversation(items)
        outputs = [it for it in after if it.get("type") == "function_call_output"]
        if not outputs:
            calls = self.plan_tool_calls(message, earlier, tools)
            if calls:
                return calls
        names = {it.get("call_id"): it.get("name", "") for it in after if it.get("type") == "function_call"}
        results = [from_output(names.get(o.get("call_id"), ""), o.get("output")) for o in outputs]
        read = self.plan_read(results, tools, called=set(names.values()))
        if read:
            return read
        text = ga.compose_answer(message, results, min_relevance=self.min_relevance)
        return [ResponseOutputMessage(id=f"msg_{uuid.uuid4().hex[:16]}", type="message", role="assistant",
                                      status="completed",
                                      content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])])]

    @staticmethod
    def _response(output: list, status: str = "completed") -> Response:
        return Response(id=f"resp_{uuid.uuid4().hex[:16]}", created_at=time.time(), model=MODEL_NAME,
                        object="response", output=output, tool_choice="auto", tools=[], top_p=None,
                        parallel_tool_calls=True, status=status)

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None) -> ModelResponse:
        output = self._turn_output(input, tools)
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    async def stream_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                              tracing, *, previous_response_id=None, conversation_id=None, prompt=None) -> AsyncIterator:
        output = self._turn_output(input, tools)
        seq = 0

        def nxt() -> int:
            nonlocal seq
            seq += 1
            return seq

        yield ResponseCreatedEvent(type="response.created", response=self._response([], "in_progress"), sequence_number=nxt())
        for index, item in enumerate(output):
            if isinstance(item, ResponseFunctionToolCall):
                yield ResponseOutputItemAddedEvent(type="response.output_item.added", item=item, output_index=index, sequence_number=nxt())
                yield ResponseOutputItemDoneEvent(type="response.output_item.done", item=item, output_index=index, sequence_number=nxt())
                continue
            text = item.content[0].text
            empty = ResponseOutputMessage(id=item.id, type="message", role="assistant", status="in_progress", content=[])
            part = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
            yield ResponseOutputItemAddedEvent(type="response.output_item.added", item=empty, output_index=index, sequence_number=nxt())
            yield ResponseContentPartAddedEvent(type="response.content_part.added", item_id=item.id, output_index=index,
                                                content_index=0, part=part, sequence_number=nxt())
            words = _DELTA_RE.findall(text)
            for start in range(0, len(words), 4):  # a few words per delta, like a real model
                yield ResponseTextDeltaEvent(type="response.output_text.delta", item_id=item.id, output_index=index,
                                             content_index=0, delta="".join(words[start : start + 4]), logprobs=[],
                                             sequence_number=nxt())
                await asyncio.sleep(self.delay_seconds)
            yield ResponseTextDoneEvent(type="response.output_text.done", item_id=item.id, output_index=index,
                                        content_index=0, text=text, logprobs=[], sequence_number=nxt())
            yield ResponseContentPartDoneEvent(type="response.content_part.done", item_id=item.id, output_index=index,
                                               content_index=0, part=item.content[0], sequence_number=nxt())
            yield ResponseOutputItemDoneEvent(type="response.output_item.done", item=item, output_index=index, sequence_number=nxt())
        yield ResponseCompletedEvent(type="response.completed", response=self._response(output), sequence_number=nxt())
