"""Application settings, read from the environment (and `.env`) by pydantic-settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import ipaddress

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
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
    # which wire API the model speaks; unset: responses without a base URL, chat_completions with one
    openai_api: Literal["responses", "chat_completions"] | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str | None = None  # a separate OpenAI-compatible embeddings endpoint (e.g. Ollama)
    embedding_api_key: str | None = Field(default=None, repr=False)
    embedding_dimensions: int | None = None  # vector size; needed for models other than OpenAI's
    embedding_timeout_seconds: float = 10.0  # per embeddings call; a failed query embedding falls back to keywords
    offline_model: bool = False  # force the offline model even when keyed
    chat_deadline_seconds: float = 90.0  # a whole chat turn (model calls, tools, retries)
    model_timeout_seconds: float = 30.0  # one upstream model call (and the wait between two stream events)
    keepalive_seconds: float = 10.0  # silence after which the stream sends a keepalive line
    token_budget_per_key_daily: int = 0  # model tokens per magic key (or client IP) per UTC day; 0 = no budget
    context_budget_tokens: int = 12_000  # what one model request may carry (instructions, tools, history)
    session_max_items: int = 100  # items kept in a stored conversation's agent session

    # knowledge base
    seed_on_startup: bool = True
    vector_index_name: str = "vector_index"
    atlas_search_index_name: str = "default"
    hnsw_threshold: int = 20_000  # exact search below this many chunks
    retrieval_top_k: int = 5
    min_relevance: float = 0.35
    kb_freshness_days: int = 180  # `kb audit` and /health flag articles verified longer ago than this
    health_deep_cache_seconds: float = 60.0  # `/health?deep=true` contacts the model endpoint at most this often

    # chat
    history_max_items: int = 20  # of a client's `history`, the newest items kept for the model
    history_max_chars: int = 12_000  # ... and at most this many characters of them (newest first)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # capacity (benchmarks/bench_capacity.py)
    max_concurrent_chats: int = 40  # chat streams one process runs at once; beyond it 503 + Retry-After; 0 = no limit
    stream_coalesce_ms: int = 25  # text deltas closer together than this share one stream line; 0 = one line each
    workers: int = 1  # uvicorn worker processes (with MONGODB_URI only: the embedded store serves one process)
    shared_state: Literal["auto", "mongo", "process"] = "auto"  # rate limits, feedback leases, content versions:
    # "mongo" keeps them in the database (several workers agree), "process" in memory; auto: mongo with MONGODB_URI
    conversation_retention_days: int = 30  # conversations (and agent memory) untouched this long are deleted; 0: kept

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
    mcp_retry_seconds: float = 30.0  # a server down at start is retried after this, doubling up to the max; 0: never
    mcp_retry_max_seconds: float = 600.0
    mcp_health_seconds: float = 60.0  # servers in use are pinged this often; one that stops answering is reconnected; 0: off
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
    rate_limit_telemetry: int = 120  # per client IP
    rate_limit_key_failures: int = 10  # failed magic-key checks (401/403) per client IP before 429s
    rate_limit_window_seconds: int = 60

    # security (see SECURITY.md)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)  # IPs/CIDRs allowed to set X-Forwarded-For
    body_read_timeout_seconds: float = 15.0  # a request's headers, then its body, must arrive within this (else 408)
    metrics_token: str | None = Field(default=None, repr=False)  # set: /metrics needs `Authorization: Bearer <token>`
    metrics_public: bool = False  # production without METRICS_TOKEN: /metrics is 404 unless this is true
    docs_enabled: bool = True  # false: /docs, /redoc and /openapi.json answer 404
    # Absolute links (RSS) use this, never the request's Host header; Render sets RENDER_EXTERNAL_URL.
    public_base_url: str | None = Field(default=None,
                                        validation_alias=AliasChoices("public_base_url", "render_external_url"))

    # telemetry storage
    telemetry_retention_days: int = 30  # stored events older than this are deleted (0 keeps them)
    telemetry_max_rows: int = 100_000  # beyond this many stored events new ones are not stored (0: no cap)

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
    def site_url(self) -> str:
        """The service's public address without a trailing slash (PUBLIC_BASE_URL, else loopback and PORT)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://127.0.0.1:{self.port}"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies)

    @property
    def nuget_enabled(self) -> bool:
        return (not self.is_development) if self.enable_nuget is None else self.enable_nuget

    @property
    def uses_embedded_store(self) -> bool:
        return not self.mongodb_uri

    @property
    def uses_shared_state(self) -> bool:
        """Counters, leases and versions live in the database (SHARED_STATE=mongo, or auto with MONGODB_URI)."""
        return self.shared_state == "mongo" or (self.shared_state == "auto" and bool(self.mongodb_uri))

    @property
    def effective_mcp_servers(self) -> list[MCPServerConfig]:
        """Production defaults to Microsoft Learn's MCP server; development to none."""
        if self.mcp_servers is not None:
            return self.mcp_servers
        if self.is_development:
            return []
        return [MCPServerConfig(name="microsoft_learn", url="https://learn.microsoft.com/api/mcp")]

    @field_validator("cors_origins", "nuget_search_urls", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("public_base_url", mode="after")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("PUBLIC_BASE_URL must be an http(s) address like https://api.example.com")
        return value.strip()

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
                     "openai_api", "embedding_base_url", "embedding_api_key", "embedding_dimensions",
                     "arize_space_id", "arize_api_key", "phoenix_api_key", "metrics_token", "public_base_url",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _reject_placeholders(self) -> "Settings":
        if self.is_development:
            return self
        for name in ("openai_api_key", "mongodb_uri", "arize_api_key", "phoenix_api_key", "metrics_token",
                     "embedding_api_key"):
            value = getattr(self, name)
            if value and value.strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"{name.upper()} is a placeholder value; set a real secret or leave it unset")
        return self

    @property
    def model_api(self) -> Literal["responses", "chat_completions"] | None:
        """The wire API of the configured model; None means the offline model (nothing configured, or forced)."""
        if self.offline_model or not (self.openai_base_url or self.openai_api_key):
            return None
        if self.openai_api:
            return self.openai_api
        return "chat_completions" if self.openai_base_url else "responses"

    @property
    def model_mode(self) -> Literal["openai", "compatible", "offline"]:
        """"openai": the Responses API (OpenAI, Azure OpenAI v1...); "compatible": Chat Completions."""
        return {"responses": "openai", "chat_completions": "compatible", None: "offline"}[self.model_api]

    @property
    def embedding_endpoint(self) -> tuple[str | None, str | None] | None:
        """(base URL, key) of OpenAI-protocol embeddings, or None for the local model.

        A separate EMBEDDING_BASE_URL wins; else an OpenAI key with the default base URL. The OpenAI
        key goes to a separate endpoint only when it is the same URL as OPENAI_BASE_URL.
        """
        if self.embedding_base_url:
            same = self.embedding_base_url.rstrip("/") == (self.openai_base_url or "").rstrip("/")
            return self.embedding_base_url, self.embedding_api_key or (self.openai_api_key if same else None)
        if self.openai_api_key and not self.openai_base_url:
            return None, self.openai_api_key
        return None
