"""What of a client's transcript reaches the model: duplicates collapsed, latest turns first, within a budget.

The original website sends its whole transcript as `history` with every question and stores each
turn twice, so history grows by four items a turn. We accept any length that fits the body limit
and keep only what the budget allows, newest first, so the 50th question works like the first.
"""

from __future__ import annotations

DEFAULT_MAX_ITEMS = 20
DEFAULT_MAX_CHARS = 12_000  # ~3k tokens of earlier dialogue: room for the question, tool output and answer


def collapse_duplicates(history: list[dict]) -> list[dict]:
    """Drop an item equal to the one before it, and a user/assistant pair equal to the pair before it."""
    out: list[dict] = []
    for item in history:
        if out and out[-1] == item:
            continue
        out.append(item)
        if len(out) >= 4 and out[-2:] == out[-4:-2]:
            del out[-2:]
    return out


def trim_history(history: list[dict], *, max_items: int = DEFAULT_MAX_ITEMS,
                 max_chars: int = DEFAULT_MAX_CHARS) -> list[dict]:
    """The newest items that fit `max_items` and `max_chars`, starting on a user turn, oldest first."""
    kept: list[dict] = []
    used = 0
    for item in reversed(collapse_duplicates([h for h in history if (h.get("content") or "").strip()])):
        size = len(item["content"])
        if len(kept) >= max_items or used + size > max_chars:
            break
        kept.append(item)
        used += size
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a dialogue the model reads should open with the user
        kept.pop(0)
    return kept
