"""Keep every model request under `CONTEXT_BUDGET_TOKENS`: the oldest turns and earlier tool outputs go first.

Applied to each model call of a run (`RunConfig.call_model_input_filter`), so it covers the replayed
session, a `/v1` request's history and the tool outputs a run piles up. For OpenAI's models tokens are
counted with the model's own BPE (`bpe-openai`: GitHub's tiktoken-compatible tokenizer whose wheel
carries the o200k/cl100k tables; `tiktoken` itself downloads them at run time, which this service must
not need). Other models (compatible endpoints tokenize their own way) get an estimate of 4 characters a
token on the JSON sent; JSON keys and escapes make it err on the safe side.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
REQUEST_OVERHEAD_TOKENS = 200  # framing, model name, options
MCP_SERVER_TOKENS = 400  # tool listings of one MCP server (not visible on the agent before the run lists them)
OMITTED = "[earlier tool output omitted to fit the context budget]"
CUT = " …[cut to fit the context budget]"


def estimate_tokens(value: Any) -> int:
    """Tokens of `value` as sent (JSON), at 4 characters a token, plus a few for the item's framing."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return len(text) // CHARS_PER_TOKEN + 4


Counter = Callable[[Any], int]
_PREFIX_ENCODINGS = (("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"),
                     ("gpt-5", "o200k_base"), ("gpt-oss", "o200k_base"), ("chatgpt-4o", "o200k_base"),
                     ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
                     ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"))


@functools.cache
def token_counter(model: str) -> Counter:
    """Exact tokens for an OpenAI model name bpe-openai knows (loaded once, ~1 s), else `estimate_tokens`."""
    try:
        import bpe_openai
    except ImportError:
        return estimate_tokens
    try:
        encoding = bpe_openai.encoding_for_model(model)
    except bpe_openai.UnsupportedModelError:  # newer names and dated snapshots: by prefix, as tiktoken maps them
        family = next((name for prefix, name in _PREFIX_ENCODINGS if model.lower().startswith(prefix)), None)
        if family is None:  # not an OpenAI model name: the documented estimate
            return estimate_tokens
        encoding = bpe_openai.get_encoding(family)

    def count(value: Any) -> int:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        return len(encoding.encode_ordinary(text)) + 4

    log.info("context budget: counting tokens with %s for %s", encoding.name, model)
    return count


def tools_tokens(agent, count: Counter = estimate_tokens) -> int:
    """The agent's tool definitions as the request carries them (name, description, JSON schema)."""
    total = 0
    for tool in getattr(agent, "tools", None) or []:
        total += count({"name": getattr(tool, "name", ""), "description": getattr(tool, "description", ""),
                                  "parameters": getattr(tool, "params_json_schema", {})})
    return total + MCP_SERVER_TOKENS * len(getattr(agent, "mcp_servers", None) or [])


def _is_user(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "user"


def _is_output(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "function_call_output"


def _shortened(item: dict, keep_chars: int) -> dict:
    output = item.get("output")
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
    if keep_chars <= 0:
        return {**item, "output": OMITTED}
    return {**item, "output": text[:keep_chars] + CUT} if len(text) > keep_chars else item


def _without_orphans(items: list) -> list:
    """Drop tool calls whose output is gone and outputs whose call is gone (bounded storage can split a pair)."""
    calls = {i.get("call_id") for i in items if isinstance(i, dict) and i.get("type") == "function_call"}
    outputs = {i.get("call_id") for i in items if _is_output(i)}
    return [i for i in items if not (isinstance(i, dict) and (
        (i.get("type") == "function_call" and i.get("call_id") not in outputs)
        or (_is_output(i) and i.get("call_id") not in calls)))]


def trim_to_budget(items: list, *, budget: int, fixed: int, count: Counter = estimate_tokens) -> list:
    """`items` (oldest first) trimmed so that `fixed` + their tokens stays under `budget` where it can.

    Order: earlier turns' tool outputs (oldest first), then earlier turns whole (oldest first), then
    this turn's tool outputs before the newest, then the newest cut to what is left. This turn's
    question and calls always stay.
    """
    items = list(items)
    start = max((n for n, item in enumerate(items) if _is_user(item)), default=0)
    earlier, current = items[:start], items[start:]
    while earlier and not _is_user(earlier[0]):  # the replayed part opens with a question
        earlier.pop(0)
    costs = [count(i) for i in earlier]
    total = fixed + sum(costs) + sum(count(i) for i in current)
    for n, item in enumerate(earlier):
        if total <= budget:
            break
        if _is_output(item):
            earlier[n] = _shortened(item, 0)
            total += count(earlier[n]) - costs[n]
            costs[n] = count(earlier[n])
    while earlier and total > budget:
        end = next((n for n in range(1, len(earlier)) if _is_user(earlier[n])), len(earlier))
        total -= sum(costs[:end])
        del earlier[:end], costs[:end]
    outputs = [n for n, item in enumerate(current) if _is_output(item)]
    for n in outputs[:-1]:
        if total <= budget:
            break
        before = count(current[n])
        current[n] = _shortened(current[n], 0)
        total += count(current[n]) - before
    if total > budget and outputs:
        n = outputs[-1]
        before = count(current[n])
        room = max(0, budget - (total - before) - count({**current[n], "output": CUT})) * CHARS_PER_TOKEN
        current[n] = _shortened(current[n], room)
        total += count(current[n]) - before
    kept = _without_orphans(earlier + current)
    if len(kept) != len(items) or total > budget:
        log.info("context budget: %d of %d items kept, ~%d tokens (budget %d)", len(kept), len(items), total, budget)
    return kept


def budget_filter(budget_tokens: int, model: str = ""):
    """A `RunConfig.call_model_input_filter` that keeps each request to `model` under `budget_tokens`."""
    from agents.run_config import ModelInputData

    count = token_counter(model)

    def apply(data) -> ModelInputData:
        fixed = REQUEST_OVERHEAD_TOKENS + count(data.model_data.instructions or "") + tools_tokens(data.agent, count)
        trimmed = trim_to_budget(list(data.model_data.input), budget=budget_tokens, fixed=fixed, count=count)
        return ModelInputData(input=trimmed, instructions=data.model_data.instructions)

    return apply
