"""The ingestion tagger: deterministic AI-library tags from keywords and aliases."""

from __future__ import annotations

import pytest

from services.ingest import tagger
from services.ingest.tagger import VOCABULARY, tag_text


@pytest.mark.parametrize(("text", "expected"), [
    ("Wrap the IChatClient in a ChatClientBuilder", [tagger.MEAI]),
    ("kernel.Plugins.AddFromType<Orders>() in Semantic Kernel", [tagger.SK]),
    ("Agents now run on Microsoft Agent Framework", [tagger.MAF]),
    ("var ml = new MLContext(seed: 0);", [tagger.MLNET]),
    ("the official OpenAI .NET library", [tagger.OPENAI_SDK]),
    ("new AzureOpenAIClient(endpoint, credential)", [tagger.AZURE_OPENAI_SDK]),
    ("using var session = new InferenceSession(path);", [tagger.ONNX]),
    ("Microsoft.Extensions.VectorData.Abstractions 9.7", [tagger.VECTOR_DATA]),
    ("dotnet aieval report --path results", [tagger.EVALUATION]),
    ("TiktokenTokenizer.CreateForModel(\"gpt-4o\")", [tagger.TOKENIZERS]),
    ("[McpServerTool] on a static method", [tagger.MCP]),
    ("new ChatCompletionsClient(endpoint, key)", [tagger.AZURE_INFERENCE]),
])
async def test_each_library_has_a_recognised_alias(text, expected):
    assert tag_text(text) == expected


async def test_every_vocabulary_tag_is_reachable():
    samples = {"Microsoft.Extensions.AI": tagger.MEAI, "Semantic Kernel": tagger.SK,
               "Microsoft.SemanticKernel.Agents.Core": tagger.SK_AGENTS, "KernelProcessStep": tagger.SK_PROCESS,
               "Microsoft Agent Framework": tagger.MAF, "AutoGen.Core": tagger.AUTOGEN, "ML.NET": tagger.MLNET,
               "openai-dotnet": tagger.OPENAI_SDK, "Azure.AI.OpenAI": tagger.AZURE_OPENAI_SDK,
               "ONNX Runtime": tagger.ONNX, "Microsoft.Extensions.VectorData": tagger.VECTOR_DATA,
               "Microsoft.Extensions.AI.Evaluation": tagger.EVALUATION, "Microsoft.ML.Tokenizers": tagger.TOKENIZERS,
               "ModelContextProtocol": tagger.MCP, "Azure.AI.Inference": tagger.AZURE_INFERENCE,
               "OllamaSharp": tagger.OLLAMASHARP, "AWSSDK.BedrockRuntime": tagger.AWS,
               "Google.GenAI": tagger.GOOGLE, "Azure.AI.Projects": tagger.FOUNDRY}
    found = {tag for text in samples for tag in tag_text(text)}
    assert found == set(VOCABULARY)
    for text, tag in samples.items():  # SK's agents and processes are also Semantic Kernel
        assert tag in tag_text(text) and set(tag_text(text)) <= {tag, tagger.SK}, text


async def test_longer_package_ids_are_not_counted_as_their_prefix():
    # Microsoft.Extensions.AI.Evaluation is the evaluation library, not Microsoft.Extensions.AI too
    assert tag_text("Add Microsoft.Extensions.AI.Evaluation.Quality to the tests") == [tagger.EVALUATION]
    assert tag_text("Microsoft.ML.Tokenizers counts tokens") == [tagger.TOKENIZERS]
    assert tag_text("Microsoft.ML.OnnxRuntimeGenAI.DirectML runs Phi-3") == [tagger.ONNX]
    assert tag_text("The Semantic Kernel Agent Framework has ChatCompletionAgent") == [tagger.SK, tagger.SK_AGENTS]


async def test_bridge_packages_carry_both_libraries_in_vocabulary_order():
    assert tag_text("dotnet add package Microsoft.Extensions.AI.OpenAI") == [tagger.MEAI, tagger.OPENAI_SDK]
    assert tag_text("Microsoft.SemanticKernel.Connectors.Qdrant with a QdrantVectorStore") == [tagger.SK, tagger.VECTOR_DATA]
    assert tag_text("ApplyOnnxModel from Microsoft.ML.OnnxTransformer") == [tagger.MLNET, tagger.ONNX]


async def test_unrelated_and_generic_text_gets_no_tags():
    assert tag_text("") == []
    assert tag_text("Entity Framework Core migrations on SQLite") == []
    assert tag_text("we compared an agent framework or two for our Python team") == []
    assert tag_text("Blazor render modes explained") == []


async def test_acronyms_are_case_sensitive():
    assert tag_text("an MCP server") == [tagger.MCP]
    assert tag_text("mcp is lowercase here") == []
    assert tag_text("SK plugins") == [tagger.SK]
    assert tag_text("the sk-learn style API") == []


async def test_deterministic_and_deduplicated():
    text = "IChatClient and IChatClient again, plus Semantic Kernel and SemanticKernel"
    assert tag_text(text) == tag_text(text) == [tagger.MEAI, tagger.SK]
