"""A paced OpenAI-protocol upstream for the capacity benchmark: `tests/openai_standin.py` in its own process.

Every chat is two Chat Completions requests, chosen by the request (so any number run at once): with
no tool result in the messages yet, a `search_knowledge_base` call after `--tool-delay` s; after
it, the answer: the first word after `--first-delay` s, then `--pieces` deltas in all, `--interval`
s apart. Nothing is recorded (the stand-in's request log would grow with every request).

    python benchmarks/upstream.py --port 8100 [--tool-delay 0.3 --first-delay 0.6 --pieces 60 --interval 0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from tests.openai_standin import OpenAIStandin, Step  # noqa: E402

QUERY = "IChatClient streaming chat response"
WORD = "stream "  # 7 characters: the answer splits into exactly `pieces` deltas of one or more words


class PacedUpstream(OpenAIStandin):
    def __init__(self, *, tool_delay: float, first_delay: float, pieces: int, interval: float) -> None:
        super().__init__()
        self.tool = Step("tool_call", name="search_knowledge_base", arguments={"query": QUERY},
                         first_delay=tool_delay)
        answer = (WORD * pieces).rstrip() + "."
        self.answer = Step("text", text=answer, pieces=pieces, first_delay=first_delay, interval=interval)
        self.served = 0

    def step_for(self, body: dict) -> Step:
        self.served += 1
        answered_tool = any(m.get("role") == "tool" for m in body.get("messages", []))
        if answered_tool:
            return self.answer
        return dataclasses.replace(self.tool, call_id=f"call_{self.served}")

    async def _record(self, request: web.Request) -> dict:
        return await request.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tool-delay", type=float, default=0.3)
    parser.add_argument("--first-delay", type=float, default=0.6)
    parser.add_argument("--pieces", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    upstream = PacedUpstream(tool_delay=args.tool_delay, first_delay=args.first_delay, pieces=args.pieces,
                             interval=args.interval)
    app = upstream.app()

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "served": upstream.served})

    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, backlog=2048)


if __name__ == "__main__":
    main()
