"""`AsyncOpenAI` that reads streamed events with pydantic-core, falling back to the SDK's own reader.

openai builds every streamed event with `construct_type`, a pure-Python walk over the type hints:
~0.5 ms per Chat Completions chunk on these machines, ~30 ms of CPU for a 60-delta answer, the
largest single cost of relaying a hosted model's stream (benchmarks/bench_capacity.py).
`model_validate` builds an equal object in ~17 µs. Only the two stream event types are read this
way (Chat Completions chunks; Responses events, picked by their `type`), and an event that does not
validate (a provider's odd or missing field) still goes the SDK's lenient way, so whatever parsed
before still parses.
"""

from __future__ import annotations

import typing
from typing import Any, Callable

import pydantic
from openai import AsyncOpenAI


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


class FastAsyncOpenAI(AsyncOpenAI):
    """`AsyncOpenAI` whose streamed events are validated by pydantic-core first (see the module docstring)."""

    _fast_readers: dict[Any, Callable[[dict], Any]] | None = None

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
