"""A local OpenAI-protocol peer: `/v1/responses` (streamed events), `/v1/chat/completions` (SSE, tool
calls, usage) and `/v1/embeddings`, with scripted replies and faults, recording every request.

Each model request takes the next `Step` from `script` (the last one repeats when `repeat` is set,
else a plain text answer is the default). Both wire APIs render the same steps in their own shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

import numpy as np
from aiohttp import web

from tests.utils.app import serve_aiohttp

DEFAULT_USAGE = (120, 30)  # (input tokens, output tokens) every scripted reply reports


@dataclass
class Step:
    """One scripted reply. `kind`: text | tool_call | web_search | status | cut | stall | hang | not_sse |
    malformed | failed | empty."""

    kind: str
    text: str = ""
    name: str = ""
    arguments: dict = field(default_factory=dict)
    call_id: str = ""  # empty: a fresh id per request (a model calling a tool again uses a new id)
    query: str = ""
    citations: list[tuple[str, str]] = field(default_factory=list)  # (title, url)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    usage: tuple[int, int] = DEFAULT_USAGE
    # pacing (Chat Completions): the first content/tool-call chunk after `first_delay` s, then one piece
    # every `interval` s on a fixed schedule (no drift when the stand-in is busy); `pieces` text deltas
    first_delay: float = 0.0
    interval: float = 0.0
    pieces: int = 3


def text(answer: str, **kw) -> Step:
    return Step("text", text=answer, **kw)


def tool_call(name: str, arguments: dict, call_id: str = "") -> Step:
    return Step("tool_call", name=name, arguments=arguments, call_id=call_id)


def web_search(query: str, answer: str, citations: list[tuple[str, str]]) -> Step:
    return Step("web_search", text=answer, query=query, citations=citations)


def status(code: int, headers: dict[str, str] | None = None) -> Step:
    return Step("status", status=code, headers=headers or {})


def fault(kind: str, *, text: str = "", seconds: float = 0.0) -> Step:
    return Step(kind, text=text, seconds=seconds)


def _pieces(answer: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(answer) // n))
    return [answer[i:i + size] for i in range(0, len(answer), size)]


def _sse(payload: dict | str, event: str | None = None) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return ((f"event: {event}\n" if event else "") + f"data: {data}\n\n").encode()


# ---------------------------------------------------------------- Responses API shapes

def _response(rid: str, model: str, status_: str, output: list, usage: tuple[int, int] | None) -> dict:
    body = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model, "status": status_,
            "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0}
    if usage:
        body["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage),
                         "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    return body


def _message_item(answer: str, citations: list[tuple[str, str]], done: bool) -> dict:
    notes = [{"type": "url_citation", "start_index": 0, "end_index": len(answer), "title": t, "url": u}
             for t, u in citations]
    content = [{"type": "output_text", "text": answer, "annotations": notes, "logprobs": []}] if done else []
    return {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed" if done else "in_progress",
            "content": content}


def responses_events(step: Step, model: str) -> list[dict]:
    """The Responses stream events for a text / tool_call / web_search / failed / empty step."""
    rid = "resp_" + hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:12]
    events: list[dict] = [{"type": "response.created", "response": _response(rid, model, "in_progress", [], None)}]
    output: list[dict] = []
    if step.kind == "failed":
        failed = _response(rid, model, "failed", [], None)
        failed["error"] = {"code": "invalid_prompt", "message": "The upstream model could not answer."}
        return events + [{"type": "response.failed", "response": failed}]
    if step.kind == "web_search":
        searching = {"id": "ws_1", "type": "web_search_call", "status": "in_progress",
                     "action": {"type": "search", "query": step.query}}
        done = {**searching, "status": "completed"}
        events += [{"type": "response.output_item.added", "output_index": 0, "item": searching},
                   {"type": "response.output_item.done", "output_index": 0, "item": done}]
        output.append(done)
    if step.kind == "tool_call":
        item = {"id": "fc_1", "type": "function_call", "call_id": step.call_id, "name": step.name,
                "arguments": json.dumps(step.arguments), "status": "completed"}
        events += [{"type": "response.output_item.added", "output_index": 0, "item": {**item, "arguments": ""}},
                   {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0,
                    "arguments": item["arguments"], "name": step.name},
                   {"type": "response.output_item.done", "output_index": 0, "item": item}]
        output.append(item)
    if step.kind in ("text", "web_search"):
        index = len(output)
        events += [{"type": "response.output_item.added", "output_index": index,
                    "item": _message_item("", [], done=False)},
                   {"type": "response.content_part.added", "item_id": "msg_1", "output_index": index,
                    "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}]
        events += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": index,
                    "content_index": 0, "delta": piece, "logprobs": []} for piece in _pieces(step.text)]
        item = _message_item(step.text, step.citations, done=True)
        events += [{"type": "response.output_text.done", "item_id": "msg_1", "output_index": index,
                    "content_index": 0, "text": step.text, "logprobs": []},
                   {"type": "response.content_part.done", "item_id": "msg_1", "output_index": index,
                    "content_index": 0, "part": item["content"][0]},
                   {"type": "response.output_item.done", "output_index": index, "item": item}]
        output.append(item)
    events.append({"type": "response.completed", "response": _response(rid, model, "completed", output, step.usage)})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


# ---------------------------------------------------------------- Chat Completions shapes

def chat_chunks(step: Step, model: str, include_usage: bool) -> list[dict]:
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if step.kind == "tool_call":
        call = {"index": 0, "id": step.call_id, "type": "function",
                "function": {"name": step.name, "arguments": json.dumps(step.arguments)}}
        chunks += [chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]
    elif step.kind == "text":
        chunks += [chunk({"content": piece}) for piece in _pieces(step.text, step.pieces)] + [chunk({}, "stop")]
    else:  # empty
        chunks.append(chunk({}, "stop"))
    if include_usage:
        prompt, completion = step.usage
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                       "total_tokens": prompt + completion}})
    return chunks


# ---------------------------------------------------------------- the server

class OpenAIStandin:
    """Scripted OpenAI-protocol server state: the script, the faults, the recorded requests."""

    def __init__(self, *, script: list[Step] | None = None, repeat: bool = False, embedding_dims: int = 64) -> None:
        self.script: list[Step] = list(script or [])
        self.repeat = repeat
        self.requests: list[dict] = []  # {"path", "body", "headers"}
        self.embedding_dims = embedding_dims
        self.embedding_delay = 0.0  # seconds each /v1/embeddings request waits
        self.released = asyncio.Event()  # set at shutdown: stalls and hangs end
        self.base_url = ""

    def model_requests(self, path: str | None = None) -> list[dict]:
        return [r for r in self.requests if not r["path"].endswith("/embeddings") and (path is None or r["path"] == path)]

    def next_step(self) -> Step:
        if not self.script:
            return text("Default stand-in answer.")
        step = self.script[0] if self.repeat and len(self.script) == 1 else self.script.pop(0)
        if step.kind == "tool_call" and not step.call_id:
            step = dataclasses.replace(step, call_id=f"call_{len(self.requests)}")
        return step

    def step_for(self, body: dict) -> Step:
        """The reply to a model request; the scripted order by default (a subclass may choose by the request)."""
        return self.next_step()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1"):  # OpenAI's paths, and Azure OpenAI's v1 API under /openai/v1
            app.router.add_post(prefix + "/responses", self._responses)
            app.router.add_post(prefix + "/chat/completions", self._chat)
            app.router.add_post(prefix + "/embeddings", self._embeddings)
        return app

    async def _record(self, request: web.Request) -> dict:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers),
                              "size": len(await request.read())})
        return body

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.released.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _fault_or_none(self, request: web.Request, step: Step) -> web.StreamResponse | None:
        """Faults both wire APIs share; None when `step` is a normal reply."""
        if step.kind == "status":
            message = {429: "Rate limit reached.", 500: "The server had an error."}.get(step.status, "Upstream error.")
            body = {"error": {"message": message, "type": "server_error" if step.status >= 500 else "rate_limit",
                              "param": None, "code": None}}
            return web.json_response(body, status=step.status, headers=step.headers)
        if step.kind == "hang":  # never answers: no status line, no headers
            await self._wait(step.seconds or 3600)
            return web.json_response({"error": {"message": "too late"}}, status=500)
        if step.kind == "not_sse":
            return web.Response(text="<html><body>Bad gateway</body></html>", content_type="text/html")
        if step.kind == "malformed":
            response = await self._open_sse(request)
            await response.write(b'data: {"type": "response.created", "respo\n\n')
            await response.write_eof()
            return response
        if step.kind == "empty":
            response = await self._open_sse(request)
            await response.write_eof()
            return response
        return None

    async def _open_sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    async def _stream(self, request: web.Request, step: Step, frames: list[bytes]) -> web.StreamResponse:
        response = await self._open_sse(request)
        if step.kind == "stall":  # headers and the first frames, then silence
            for frame in frames[: max(2, len(frames) // 2)]:
                await response.write(frame)
            await self._wait(step.seconds or 3600)
            return response
        if step.kind == "cut":  # part of the answer, then (a moment later) the connection drops
            for frame in frames[: max(2, len(frames) // 2)]:
                await response.write(frame)
            await self._wait(0.3)
            request.transport.close()
            return response
        if step.first_delay or step.interval:
            await self._paced(response, step, frames)
        else:
            for frame in frames:
                await response.write(frame)
        await response.write_eof()
        return response

    async def _paced(self, response: web.StreamResponse, step: Step, frames: list[bytes]) -> None:
        """The role chunk at once, the content (or tool-call) chunks on their schedule, the rest right after."""
        paced = step.pieces if step.kind == "text" else 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, frame in enumerate(frames):
            if 1 <= index <= paced:
                wait = start + step.first_delay + (index - 1) * step.interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await response.write(frame)

    async def _begin(self, request: web.Request) -> tuple[dict, Step, web.StreamResponse | None, Step]:
        """(recorded body, its scripted step, the fault response when the step is one, the shape to stream).

        A stalled or cut step streams the start of a text answer before it stalls or cuts."""
        body = await self._record(request)
        step = self.step_for(body)
        shape = step if step.kind not in ("stall", "cut") else Step("text", text=step.text or "Partial answer here.")
        return body, step, await self._fault_or_none(request, step), shape

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body, step, fault, shape = await self._begin(request)
        if fault is not None:
            return fault
        events = responses_events(shape, body.get("model", "standin"))
        return await self._stream(request, step, [_sse(e, e["type"]) for e in events])

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, step, fault, shape = await self._begin(request)
        if fault is not None:
            return fault
        if step.kind == "failed":  # Chat Completions has no failed event: an error object mid-stream
            frames = [_sse({"error": {"message": "The upstream model could not answer.", "type": "server_error"}})]
            return await self._stream(request, Step("text"), frames)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = chat_chunks(shape, body.get("model", "standin"), include_usage)
        return await self._stream(request, step, [_sse(c) for c in chunks] + [_sse("[DONE]")])

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.embedding_delay:
            await self._wait(self.embedding_delay)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": self.vector(t)} for i, t in enumerate(texts)]
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": 8 * len(texts), "total_tokens": 8 * len(texts)}})

    def vector(self, text_: str) -> list[float]:
        """A deterministic bag-of-words vector: texts sharing words point the same way."""
        vector = np.zeros(self.embedding_dims, dtype=np.float32)
        for word in text_.lower().split():
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.embedding_dims] += 1.0
        norm = float(np.linalg.norm(vector)) or 1.0
        return (vector / norm).tolist()


@asynccontextmanager
async def running_standin(script: list[Step] | None = None, **options) -> AsyncIterator[OpenAIStandin]:
    """Serve a stand-in on a loopback port; `standin.base_url` ends in `/v1`."""
    standin = OpenAIStandin(script=script, **options)
    async with serve_aiohttp(standin.app()) as url:
        standin.base_url = url + "/v1"
        try:
            yield standin
        finally:
            standin.released.set()
