"""Application settings, read from the environment (and `.env`) by pydantic-settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VERSION = "1.0.0"
_PLACEHOLDERS = {"changeme", "your-key-here", "sk-...", "xxx", "placeholder", "<secret>"}


class MCPServerConfig(BaseModel):
    """One MCP server reached over streamable HTTP."""

    name: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Every setting the service reads; see `.env.example` for what each one does."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: str = "development"
    port: int = 8000
    host: str | None = None  # unset: 127.0.0.1 in development, 0.0.0.0 in production (Render)
    data_dir: Path = Path("./.data")

    # storage
    mongodb_uri: str | None = Field(default=None, repr=False)  # secrets stay out of repr() and so out of logs
    database_name: str = "csharp_ai_buddy"
    store_timeout_seconds: float = 10.0

    # models
    openai_api_key: str | None = Field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4.1-mini"
    embedding_model: str = "text-embedding-3-small"
    offline_model: bool = False  # force the offline model even when keyed

    # knowledge base
    seed_on_startup: bool = True
    vector_index_name: str = "vector_index"
    atlas_search_index_name: str = "default"
    hnsw_threshold: int = 20_000  # exact search below this many chunks
    retrieval_top_k: int = 5
    min_relevance: float = 0.35
    kb_freshness_days: int = 180  # `kb audit` and /health flag articles verified longer ago than this

    # chat
    history_max_items: int = 20  # of a client's `history`, the newest items kept for the model
    history_max_chars: int = 12_000  # ... and at most this many characters of them (newest first)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # tools
    nuget_search_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "https://azuresearch-usnc.nuget.org/query",
            "https://azuresearch-ussc.nuget.org/query",
        ]
    )
    nuget_registration_url: str = "https://api.nuget.org/v3/registration5-gz-semver2/"
    nuget_flat_container_url: str = "https://api.nuget.org/v3-flatcontainer/"
    nuget_timeout_seconds: float = 5.0
    enable_nuget: bool | None = None  # unset: on in production, off in development (no network offline)
    mcp_servers: Annotated[list[MCPServerConfig] | None, NoDecode] = None
    mcp_connect_timeout_seconds: float = 10.0  # a server slower than this at startup is skipped
    mcp_timeout_seconds: float = 20.0  # per MCP request (tool listing, tool call)
    enable_web_search: bool = True

    # tracing / feedback
    phoenix_collector_endpoint: str | None = None
    phoenix_project_name: str = "csharp-ai-buddy"
    phoenix_api_key: str | None = Field(default=None, repr=False)
    arize_space_id: str | None = None
    arize_api_key: str | None = Field(default=None, repr=False)
    arize_project_name: str = "csharp-ai-buddy"
    trace_include_content: bool = True
    feedback_retry_base_seconds: float = 2.0
    feedback_retry_max_seconds: float = 300.0

    # rate limits (requests per window per key or client IP; 0 disables)
    rate_limit_chat: int = 30
    rate_limit_feedback: int = 60
    rate_limit_window_seconds: int = 60

    @property
    def is_development(self) -> bool:
        """Unknown environment values mean production."""
        return self.environment.strip().lower() == "development"

    @property
    def bind_host(self) -> str:
        """Where `python main.py` listens: HOST, else loopback in development and all interfaces in production."""
        if self.host and self.host.strip():
            return self.host.strip()
        return "127.0.0.1" if self.is_development else "0.0.0.0"

    @property
    def nuget_enabled(self) -> bool:
        return (not self.is_development) if self.enable_nuget is None else self.enable_nuget

    @property
    def uses_embedded_store(self) -> bool:
        return not self.mongodb_uri

    @property
    def effective_mcp_servers(self) -> list[MCPServerConfig]:
        """Production defaults to Microsoft Learn's MCP server; development to none."""
        if self.mcp_servers is not None:
            return self.mcp_servers
        if self.is_development:
            return []
        return [MCPServerConfig(name="microsoft_learn", url="https://learn.microsoft.com/api/mcp")]

    @field_validator("cors_origins", "nuget_search_urls", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _parse_mcp(cls, value: object) -> object:
        # JSON list of {name, url, headers}, or "name=url,name2=url2"; empty means "use the default"
        # (so a copied .env.example keeps Microsoft Learn in production) and "[]" disables MCP.
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if text.startswith("["):
                return json.loads(text)
            servers = []
            for part in text.split(","):
                name, _, url = part.partition("=")
                servers.append({"name": name.strip(), "url": url.strip()})
            return servers
        return value

    @field_validator("openai_api_key", "mongodb_uri", "openai_base_url", "phoenix_collector_endpoint",
                     "arize_space_id", "arize_api_key", "phoenix_api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _reject_placeholders(self) -> "Settings":
        if self.is_development:
            return self
        for name in ("openai_api_key", "mongodb_uri", "arize_api_key", "phoenix_api_key"):
            value = getattr(self, name)
            if value and value.strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"{name.upper()} is a placeholder value; set a real secret or leave it unset")
        return self

    @property
    def model_mode(self) -> Literal["openai", "compatible", "offline"]:
        if self.offline_model:
            return "offline"
        if self.openai_base_url:
            return "compatible"
        if self.openai_api_key:
            return "openai"
        return "offline"
