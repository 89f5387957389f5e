"""Ingestion tagger: which AI libraries a text is about, from keyword and alias rules.

Deterministic on purpose: ingestion must tag the same text the same way every time, and the eval
suite (`evals/test_cases/categorization.json`) judges these rules with precision/recall/F1.

Rules run most-specific first and each match blanks out its span, so a package id such as
`Microsoft.Extensions.AI.Evaluation` counts once (as the evaluation library) instead of also
matching the shorter `Microsoft.Extensions.AI` inside it.
"""

from __future__ import annotations

import re

MEAI = "Microsoft.Extensions.AI"
SK = "Semantic Kernel"
MAF = "Microsoft Agent Framework"
MLNET = "ML.NET"
OPENAI_SDK = "OpenAI .NET SDK"
AZURE_OPENAI_SDK = "Azure OpenAI SDK"
ONNX = "ONNX Runtime"
VECTOR_DATA = "Microsoft.Extensions.VectorData"
EVALUATION = "Microsoft.Extensions.AI.Evaluation"
TOKENIZERS = "Microsoft.ML.Tokenizers"
MCP = "Model Context Protocol SDK"
AZURE_INFERENCE = "Azure AI Inference"
SK_AGENTS = "Semantic Kernel Agents"
SK_PROCESS = "Semantic Kernel Process Framework"
AUTOGEN = "AutoGen"
OLLAMASHARP = "OllamaSharp"
AWS = "AWS SDK for .NET"
GOOGLE = "Google Cloud .NET SDK"
FOUNDRY = "Azure AI Foundry SDK"

# The `ai_library` vocabulary of the knowledge base, in the order tags are returned.
VOCABULARY: tuple[str, ...] = (MEAI, SK, SK_AGENTS, SK_PROCESS, MAF, AUTOGEN, MLNET, OPENAI_SDK, AZURE_OPENAI_SDK,
                               ONNX, VECTOR_DATA, EVALUATION, TOKENIZERS, MCP, AZURE_INFERENCE, OLLAMASHARP, AWS,
                               GOOGLE, FOUNDRY)

_I = re.IGNORECASE
# A package id continues with ".Word"; stop a shorter id from matching a longer one's prefix.
_END = r"\b(?!\.\w)"

# (pattern, flags, tags). Order matters: specific names before the generic ones they contain.
_RULES: list[tuple[str, int, tuple[str, ...]]] = [
    # package ids that belong to one library although they start with another's prefix
    (r"Microsoft\.Extensions\.AI\.Evaluation(?:\.\w+)*", _I, (EVALUATION,)),
    (r"Microsoft\.Extensions\.AI\.OpenAI" + _END, _I, (MEAI, OPENAI_SDK)),
    (r"Microsoft\.Extensions\.AI\.AzureAIInference" + _END, _I, (MEAI, AZURE_INFERENCE)),
    (r"Microsoft\.Extensions\.AI\.Ollama" + _END, _I, (MEAI,)),
    (r"Microsoft\.Extensions\.VectorData(?:\.\w+)*", _I, (VECTOR_DATA,)),
    (r"Microsoft\.SemanticKernel\.Connectors\.(?:InMemory|Qdrant|AzureAISearch|Redis|Postgres|PgVector|Sqlite|"
     r"SqlServer|MongoDB|CosmosMongoDB|CosmosNoSql|Weaviate|Pinecone|Milvus|Chroma|Elasticsearch)\w*", _I,
     (VECTOR_DATA, SK)),
    (r"Microsoft\.SemanticKernel\.Connectors\.Onnx\w*", _I, (SK, ONNX)),
    (r"Microsoft\.ML\.Tokenizers(?:\.\w+)*", _I, (TOKENIZERS,)),
    (r"Microsoft\.ML\.OnnxRuntime(?:GenAI)?(?:\.\w+)*", _I, (ONNX,)),
    (r"Microsoft\.ML\.OnnxTransformer", _I, (MLNET, ONNX)),
    (r"Microsoft\.Agents\.AI(?:\.\w+)*", _I, (MAF,)),
    (r"Microsoft\.SemanticKernel\.Agents(?:\.\w+)*", _I, (SK, SK_AGENTS)),
    (r"Microsoft\.SemanticKernel\.Process(?:\.\w+)*", _I, (SK, SK_PROCESS)),
    (r"Microsoft\.SemanticKernel\.Connectors\.Ollama\b", _I, (SK, OLLAMASHARP)),
    (r"\bAutoGen\.(?:Core|OpenAI|SemanticKernel|Ollama|Mistral|Anthropic|Gemini|LMStudio|AzureAIInference|"
     r"DotnetInteractive|SourceGenerator|WebAPI)\b|\bAutoGen(?:\s+for)?\s+\.NET\b|\bAutoGen\.Net\b", _I, (AUTOGEN,)),
    (r"\bAWSSDK\.\w+|\bAWS\.Bedrock\.MEAI\b|\bAmazonBedrockRuntimeClient\b|\bIAmazonBedrockRuntime\b|"
     r"\bAWS\s+SDK\s+for\s+\.NET\b", _I, (AWS,)),
    (r"\bGoogle\.GenAI\b|\bGoogle\.Cloud\.AIPlatform(?:\.\w+)*|\bPredictionServiceClient\b", 0, (GOOGLE,)),
    (r"\bAzure\.AI\.Projects\b|\bAIProjectClient\b|\bAzure\.AI\.Agents\.Persistent\b|\bPersistentAgentsClient\b",
     0, (FOUNDRY,)),
    (r"\bOllamaSharp\b|\bOllamaApiClient\b", 0, (OLLAMASHARP,)),
    (r"Microsoft\.SemanticKernel(?:\.\w+)*", _I, (SK,)),
    (r"Microsoft\.Extensions\.AI(?:\.Abstractions)?" + _END, _I, (MEAI,)),
    (r"Microsoft\.Extensions\.ML" + _END, _I, (MLNET,)),
    (r"Microsoft\.ML(?:\.\w+)*", _I, (MLNET,)),
    (r"Azure\.AI\.OpenAI(?:\.\w+)*", _I, (AZURE_OPENAI_SDK,)),
    (r"Azure\.AI\.Inference(?:\.\w+)*", _I, (AZURE_INFERENCE,)),
    (r"ModelContextProtocol(?:\.\w+)*", _I, (MCP,)),
    # product names; "Semantic Kernel Agent Framework" is Semantic Kernel's agent API, not MAF
    (r"Semantic\s+Kernel(?:'s)?\s+Agents?(?:\s+Framework)?\b", _I, (SK, SK_AGENTS)),
    (r"Semantic\s+Kernel(?:'s)?\s+Process(?:\s+Framework)?\b", _I, (SK, SK_PROCESS)),
    (r"\bKernelProcessStep\b|\bProcessBuilder\b|\bKernelProcess\b", 0, (SK, SK_PROCESS)),
    (r"\bChatCompletionAgent\b|\bAgentGroupChat\b|\bAzureAIAgent\b|\bOpenAIResponseAgent\b|"
     r"\bOpenAIAssistantAgent\b|\bChatHistoryAgentThread\b", 0, (SK, SK_AGENTS)),
    (r"Semantic\s+Kernel|SemanticKernel", _I, (SK,)),
    (r"Microsoft\s+Agent\s+Framework", _I, (MAF,)),
    (r"\bAgent\s+Framework\b", 0, (MAF,)),  # capitalised: the product, not "an agent framework"
    (r"\bAI\.Evaluation\b|\bdotnet\s+aieval\b|\bIEvaluator\b|\b[A-Z]\w*Evaluator\b", 0, (EVALUATION,)),
    (r"\bML\.NET\b|\bMLContext\b|\bPredictionEngine(?:Pool)?\b|\bModel\s+Builder\b|\bmlnet\b|\bAutoML\b", 0, (MLNET,)),
    (r"ONNX\s+Runtime(?:\s+GenAI)?|\bonnxruntime(?:-genai)?\b|\bInferenceSession\b|\bOrtValue\b|"
     r"\bAppendExecutionProvider_\w+|\bDirectML\b", _I, (ONNX,)),
    (r"\bONNX\b", _I, (ONNX,)),
    (r"\bVectorStore(?:Collection|Key|Data|Vector|Record\w*)?\b|\b\w+VectorStore\b|\bvector\s+store\s+connectors?\b",
     0, (VECTOR_DATA,)),
    (r"\bTiktokenTokenizer\b|\bLlamaTokenizer\b|\bBertTokenizer\b|\bCountTokens\b", 0, (TOKENIZERS,)),
    (r"Model\s+Context\s+Protocol|\bMcp\w+|\bMCP\b|\bmcpserver\b", 0, (MCP,)),
    (r"\bmodel\s+context\s+protocol\b", _I, (MCP,)),
    (r"Azure\s+AI\s+(?:Model\s+)?Inference|\bChatCompletionsClient\b", _I, (AZURE_INFERENCE,)),
    (r"\bAzureOpenAIClient\b|\bAzure\s+OpenAI\b", _I, (AZURE_OPENAI_SDK,)),
    (r"\bopenai-dotnet\b|\bOpenAI\s+\.NET\s+(?:SDK|library)\b|\bofficial\s+OpenAI\s+(?:\.NET\s+)?(?:SDK|library)\b|"
     r"\bOpenAI\s+(?:NuGet\s+)?package\b|\bpackage\s+OpenAI\b(?!\.)|\bOpenAIClient\b|\bOpenAIResponseClient\b|"
     r"\bCompleteChat(?:Streaming)?Async\b|\bOpenAI\.(?:Chat|Embeddings|Images|Audio|Responses|Assistants)\b", _I,
     (OPENAI_SDK,)),
    (r"\bIChatClient\b|\bIEmbeddingGenerator\b|\bChatClientBuilder\b|\bAIFunctionFactory\b|\bAIFunction\b|"
     r"\bUseFunctionInvocation\b|\bMEAI\b|\bAsIChatClient\b|\bDelegatingChatClient\b", 0, (MEAI,)),
    (r"\bKernelFunction\b|\bIChatCompletionService\b|\bFunctionChoiceBehavior\b|\bAgentGroupChat\b|"
     r"\bChatCompletionAgent\b|\bKernel\.CreateBuilder\b|\bSK\b", 0, (SK,)),
    (r"\bChatClientAgent\b|\bAIAgent\b|\bMAF\b", 0, (MAF,)),
]
_COMPILED = [(re.compile(pattern, flags), tags) for pattern, flags, tags in _RULES]


def tag_text(text: str) -> list[str]:
    """The AI-library tags `text` mentions, in vocabulary order (empty when none)."""
    remaining = text or ""
    found: set[str] = set()
    for pattern, tags in _COMPILED:
        def consume(match: re.Match) -> str:
            found.update(tags)
            return " " * len(match.group(0))

        remaining = pattern.sub(consume, remaining)
    return [tag for tag in VOCABULARY if tag in found]
