"""What one agent run hands its tools (through `RunContextWrapper`), and what the tools hand back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.agent.tool_results import ToolResult

if TYPE_CHECKING:
    from nuget_search import NuGetClient
    from services.retrieval.knowledge_base import KnowledgeBase


@dataclass
class ChatContext:
    """Per-run dependencies for the tools, and the typed results they record by tool call id."""

    knowledge_base: "KnowledgeBase"
    top_k: int = 5
    min_relevance: float = 0.0  # passages below this are not returned to the model (nor shown as sources)
    filters: dict[str, str] = field(default_factory=dict)
    nuget: "NuGetClient | None" = None
    tool_results: dict[str, ToolResult] = field(default_factory=dict)

    def record(self, wrapper: object, result: ToolResult) -> None:
        """Keep `result` for the stream under the calling tool's id (the SDK's `ToolContext.tool_call_id`)."""
        call_id = getattr(wrapper, "tool_call_id", None)
        if call_id:
            self.tool_results[call_id] = result
