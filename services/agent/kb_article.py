"""The `read_kb_article` tool: every passage of one knowledge-base article, in article order.

`search_knowledge_base` returns at most two passages per article, and the paragraph or example that
answers a question is often in a third. The offline model reads its best article through this tool
before answering, so its extractive answer can lead with that paragraph and quote the example.
"""

from __future__ import annotations

import json

from agents import RunContextWrapper, function_tool

from services.agent.context import ChatContext
from services.agent.tool_results import ToolResult

MAX_CHUNKS = 40  # an article is ~8 chunks; a runaway document must not flood the answer


@function_tool
async def read_kb_article(ctx: RunContextWrapper[ChatContext], url: str) -> str:
    """Read one knowledge-base article in full: all its passages, in order.

    Args:
        url: The article's URL exactly as `search_knowledge_base` returned it.
    """
    docs = await ctx.context.knowledge_base.article_chunks(url, limit=MAX_CHUNKS)
    if not docs:
        result = ToolResult(tool="read_kb_article", error="No knowledge-base article has that URL.")
        ctx.context.record(ctx, result)
        return json.dumps({"error": result.error})
    results = [{"title": d.get("title") or url, "url": url, "section": d.get("section") or "",
                "content": d.get("content") or "", "chunk": int(d.get("chunk_index") or 0)} for d in docs]
    ctx.context.record(ctx, ToolResult(tool="read_kb_article", results=results))
    return json.dumps({"article": url, "results": results}, ensure_ascii=False)
