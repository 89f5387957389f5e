"""`AsyncOpenAI` that reads streamed events with pydantic-core, falling back to the SDK's own reader, over aiohttp.

openai builds every streamed event with `construct_type`, a pure-Python walk over the type hints:
~0.5 ms per Chat Completions chunk on these machines, ~30 ms of CPU for a 60-delta answer, the
largest single cost of relaying a hosted model's stream (benchmarks/bench_capacity.py).
`model_validate` builds an equal object in ~17 µs. Only the two stream event types are read this
way (Chat Completions chunks; Responses events, picked by their `type`), and an event that does not
validate (a provider's odd or missing field) still goes the SDK's lenient way, so whatever parsed
before still parses.

`model_http_client`: the client's HTTP transport is aiohttp (openai's own `DefaultAioHttpClient`;
aiohttp is already a dependency). Reading a streamed answer through httpx costs a cancel scope, an
h11 event and several generator layers per chunk; aiohttp's C parser hands the SSE bytes over
directly (measured in benchmarks/README.md, "Capacity"). One client, one pooled connector: the
upstream connections are kept alive between calls.

`FastSSEDecoder`: openai's SSE decoder splits lines with a regex over each chunk and copies them
through a bytearray; with LF line ends (what OpenAI and compatible servers send) `bytes.split`
does the same in one call. Events, fields and errors are openai's own (`SSEDecoder.decode`); a
stream that uses CR or CRLF line ends switches to openai's splitter from the first CR on.
"""

from __future__ import annotations

import typing
from typing import Any, AsyncIterator, Callable

import pydantic
from openai import AsyncOpenAI
from openai._streaming import ServerSentEvent, SSEDecoder

try:
    from openai._streaming import _SSELineDecoder
except ImportError:  # another openai: its own decoder throughout
    _SSELineDecoder = None


def _by_type(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """The models of a `type`-discriminated union (openai's Annotated[Union[...], PropertyInfo]) by `type` value."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for member in typing.get_args(union):
        field = getattr(member, "model_fields", {}).get("type")
        for value in typing.get_args(field.annotation) if field is not None else ():
            if isinstance(value, str):
                models[value] = member
    return models


def _readers() -> dict[Any, Callable[[dict], Any]]:
    from openai.types.chat import ChatCompletionChunk
    from openai.types.responses import ResponseStreamEvent

    events = _by_type(ResponseStreamEvent)

    def response_event(data: dict) -> Any:
        model = events.get(data.get("type"))
        if model is None:
            raise LookupError(data.get("type"))
        return model.model_validate(data)

    return {ChatCompletionChunk: ChatCompletionChunk.model_validate, ResponseStreamEvent: response_event}


def model_http_client(timeout_seconds: float):
    """openai's aiohttp-backed `httpx2.AsyncClient` (its default limits and redirects), or None: the SDK's httpx."""
    try:
        from openai import DefaultAioHttpClient

        return DefaultAioHttpClient(timeout=timeout_seconds)
    except (ImportError, RuntimeError):  # openai without its aiohttp adapter
        return None


class FastSSEDecoder(SSEDecoder):
    """openai's `SSEDecoder` with LF-separated lines split by `bytes.split` (see the module docstring)."""

    async def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> AsyncIterator[ServerSentEvent]:
        pending = b""  # the start of a line whose end has not arrived
        splitter = None  # openai's line splitter, once the stream has shown a CR
        decode = self.decode
        try:
            async for chunk in iterator:
                if splitter is None and b"\r" not in chunk:
                    lines = (pending + chunk if pending else chunk).split(b"\n")
                    pending = lines.pop()
                else:
                    if splitter is None:
                        splitter = _SSELineDecoder()
                        chunk, pending = pending + chunk, b""
                    lines = splitter.feed(chunk)
                for line in lines:
                    sse = decode(line.decode("utf-8"))
                    if sse is not None:
                        yield sse
            # A last line without its end dispatches nothing (as in openai's decoder), but is still decoded.
            for line in splitter.finish() if splitter is not None else [pending] if pending else []:
                decode(line.decode("utf-8"))
        finally:
            self._reset()


class FastAsyncOpenAI(AsyncOpenAI):
    """`AsyncOpenAI` whose streamed events are validated by pydantic-core first (see the module docstring)."""

    _fast_readers: dict[Any, Callable[[dict], Any]] | None = None

    def _make_sse_decoder(self):
        return FastSSEDecoder() if _SSELineDecoder is not None else super()._make_sse_decoder()

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        if isinstance(data, dict) and not self._strict_response_validation:
            readers = FastAsyncOpenAI._fast_readers
            if readers is None:
                readers = FastAsyncOpenAI._fast_readers = _readers()
            try:
                read = readers.get(cast_to)
            except TypeError:  # an unhashable type form: not one of ours
                read = None
            if read is not None:
                try:
                    return read(data)
                except (pydantic.ValidationError, LookupError):
                    pass  # the SDK's lenient construction below
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)
