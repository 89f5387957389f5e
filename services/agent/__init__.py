"""The domain-expert agent: instructions, tools, MCP servers, the offline model and the one agent run."""
