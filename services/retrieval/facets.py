"""Filter values → the knowledge base's facets: the website's vocabulary, aliases, case and spacing.

Filters are preferences, never exclusions: a value that names a facet the KB knows boosts the
passages that carry it; a value it does not know (free text, "Other") is ignored by retrieval and
still reaches the prompt.
"""

from __future__ import annotations

import re

FILTER_FIELDS = {"aiLibrary": "ai_libraries", "aiProvider": "ai_providers", "dotnetVersion": "dotnet_versions"}


def key(value: str) -> str:
    """Loose key: case, spaces and punctuation ignored ("Semantic-Kernel" == "semantic kernel")."""
    return re.sub(r"[^a-z0-9]", "", value.lower())


# alias key → canonical facet value, per filter. Website values first, then common spellings.
_ALIASES: dict[str, dict[str, str]] = {
    "aiLibrary": {
        "openai": "OpenAI .NET SDK", "openainetsdk": "OpenAI .NET SDK", "openaidotnet": "OpenAI .NET SDK",
        "openaisdk": "OpenAI .NET SDK", "openainet": "OpenAI .NET SDK",
        "azureopenai": "Azure OpenAI SDK", "azureaiopenai": "Azure OpenAI SDK",
        "microsoftextensionsai": "Microsoft.Extensions.AI", "meai": "Microsoft.Extensions.AI",
        "extensionsai": "Microsoft.Extensions.AI",
        "semantickernel": "Semantic Kernel", "sk": "Semantic Kernel",
        "semantickernelagents": "Semantic Kernel Agents", "skagents": "Semantic Kernel Agents",
        "semantickernelagentframework": "Semantic Kernel Agents",
        "semantickernelprocessframework": "Semantic Kernel Process Framework",
        "processframework": "Semantic Kernel Process Framework",
        "autogen": "AutoGen", "autogennet": "AutoGen",
        "ollamasharp": "OllamaSharp",
        "mlnet": "ML.NET", "microsoftml": "ML.NET",
        "agentframework": "Microsoft Agent Framework", "microsoftagentframework": "Microsoft Agent Framework",
        "onnx": "ONNX Runtime", "onnxruntime": "ONNX Runtime",
        "mcp": "Model Context Protocol SDK", "modelcontextprotocol": "Model Context Protocol SDK",
        "vectordata": "Microsoft.Extensions.VectorData",
    },
    "aiProvider": {
        "openai": "OpenAI", "azureopenai": "Azure OpenAI",
        "azureaifoundry": "Azure AI Foundry", "aifoundry": "Azure AI Foundry", "foundry": "Azure AI Foundry",
        "microsoftfoundry": "Azure AI Foundry", "azureai": "Azure AI Foundry",
        "ollama": "Ollama", "local": "Local",
        "amazonbedrock": "Amazon Bedrock", "awsbedrock": "Amazon Bedrock", "bedrock": "Amazon Bedrock",
        "aws": "Amazon Bedrock",
        "googlecloud": "Google Cloud", "google": "Google Cloud", "gemini": "Google Cloud",
        "vertexai": "Google Cloud", "googlegemini": "Google Cloud", "gcp": "Google Cloud",
        "huggingface": "Hugging Face",
    },
}
_FRAMEWORK = re.compile(r"^(net(framework|fx)|net4\d*|netframework4\d*|dotnetframework)$")


def canonical(name: str, value: str) -> str | None:
    """The facet value `value` stands for under filter `name`, or None when it names nothing known."""
    if name not in FILTER_FIELDS or not isinstance(value, str) or not value.strip():
        return None
    k = key(value)
    if name == "dotnetVersion":
        if _FRAMEWORK.match(k) or "framework" in k:
            return ".NET Framework"
        match = re.search(r"(\d+)", value)
        return f".NET {int(match.group(1))}" if match and int(match.group(1)) < 40 else None
    return _ALIASES[name].get(k) or value.strip()


def preferences(filters: dict[str, str] | None, known: dict[str, set[str]]) -> dict[str, str]:
    """{field: facet key} for the filters that name a facet the KB holds; the rest are dropped."""
    out: dict[str, str] = {}
    for name, value in (filters or {}).items():
        facet = canonical(name, value)
        field = FILTER_FIELDS.get(name)
        if facet and field and key(facet) in known.get(field, set()):
            out[field] = key(facet)
    return out


def matches(chunk: dict, prefs: dict[str, str], *, strict: bool = False) -> int:
    """How many of the preferred facets this chunk carries ("Any" provider counts unless `strict`)."""
    hits = 0
    cached = chunk.get("_facet_keys")
    if cached is None:  # computed once per stored chunk: this runs for every chunk of a filtered search
        cached = {f: frozenset(key(v) for v in chunk.get(f) or ()) for f in FILTER_FIELDS.values()}
        if chunk:
            chunk["_facet_keys"] = cached
    for field, wanted in prefs.items():
        keys = cached.get(field, frozenset())
        if wanted in keys or (not strict and field == "ai_providers" and "any" in keys):
            hits += 1
    return hits
