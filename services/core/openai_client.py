"""The one OpenAI client factory, shared by the model, the embedder and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI


def open_openai_client(settings: Settings) -> "AsyncOpenAI | None":
    """An `AsyncOpenAI` for the configured key/base URL, or None when nothing OpenAI-shaped is configured."""
    if settings.model_mode == "offline" and not settings.openai_api_key:
        return None
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=settings.openai_api_key or "not-needed", base_url=settings.openai_base_url)
