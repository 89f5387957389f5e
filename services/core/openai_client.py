"""The OpenAI client factories: one for the model (Responses or Chat Completions), one for embeddings.

Both speak the OpenAI protocol to whatever base URL is configured (OpenAI, Azure OpenAI's v1
endpoint, Ollama, vLLM...). Timeouts are per call; retries are bounded so that they fit the turn's
deadline (`CHAT_DEADLINE_SECONDS`), which the agent run enforces on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

MAX_MODEL_RETRIES = 2
EMBEDDING_RETRIES = 1


def model_retries(settings: Settings) -> int:
    """Retries of one model call (429, 5xx, connection errors): at most 2, and only as many as fit the deadline."""
    attempts = int(settings.chat_deadline_seconds // max(settings.model_timeout_seconds, 0.001))
    return max(0, min(MAX_MODEL_RETRIES, attempts - 1))


def open_openai_client(settings: Settings) -> "AsyncOpenAI | None":
    """An `AsyncOpenAI` for the configured key/base URL, or None when nothing OpenAI-shaped is configured."""
    if settings.model_mode == "offline" and not settings.openai_api_key:
        return None
    from services.core.fast_openai import FastAsyncOpenAI, model_http_client  # streamed events read ~30x faster

    return FastAsyncOpenAI(api_key=settings.openai_api_key or "not-needed", base_url=settings.openai_base_url,
                           timeout=settings.model_timeout_seconds, max_retries=model_retries(settings),
                           http_client=model_http_client(settings.model_timeout_seconds))


def open_embedding_client(settings: Settings, *, timeout_seconds: float | None = None,
                          max_retries: int = EMBEDDING_RETRIES) -> "AsyncOpenAI | None":
    """A client for OpenAI-protocol embeddings (`Settings.embedding_endpoint`), or None for the local model.

    Its own client, so a slow embeddings endpoint gives up after `EMBEDDING_TIMEOUT_SECONDS` (the
    knowledge base then answers from keywords) whatever the model's timeout is; bulk ingestion passes
    a longer `timeout_seconds`. The caller closes it.
    """
    endpoint = settings.embedding_endpoint
    if endpoint is None:
        return None
    from openai import AsyncOpenAI

    base_url, key = endpoint
    return AsyncOpenAI(api_key=key or "not-needed", base_url=base_url,
                       timeout=timeout_seconds or settings.embedding_timeout_seconds, max_retries=max_retries)
