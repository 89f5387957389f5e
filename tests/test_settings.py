"""Every setting is documented in .env.example and listed in the Render blueprint; parsing rules."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.core.settings import Settings
from tests.utils.app import make_settings

ROOT = Path(__file__).resolve().parent.parent


def _names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_env_example_documents_every_setting():
    documented = {line.split("=", 1)[0].strip() for line in (ROOT / ".env.example").read_text().splitlines()
                  if "=" in line and not line.lstrip().startswith("#")}
    assert _names() <= documented, _names() - documented


def test_render_blueprint_lists_every_setting_and_keeps_secrets_out():
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    service = blueprint["services"][0]
    assert service["healthCheckPath"] == "/health"
    assert "$PORT" in service["startCommand"] and service["buildCommand"].startswith("pip install -r requirements.txt")
    env = {item["key"]: item for item in service["envVars"]}
    assert _names() - {"PORT"} <= set(env), _names() - {"PORT"} - set(env)
    for secret in ("OPENAI_API_KEY", "MONGODB_URI", "ARIZE_API_KEY", "ARIZE_SPACE_ID", "PHOENIX_API_KEY"):
        assert env[secret].get("sync") is False and "value" not in env[secret]


def test_list_settings_parse_from_text(tmp_path, monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("MCP_SERVERS", "learn=https://learn.microsoft.com/api/mcp")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.mcp_servers[0].name == "learn"
    monkeypatch.setenv("MCP_SERVERS", "")
    assert Settings(_env_file=None, environment="production").effective_mcp_servers[0].url.startswith("https://learn.microsoft.com")
    monkeypatch.setenv("MCP_SERVERS", "[]")
    assert Settings(_env_file=None, environment="production").effective_mcp_servers == []


def test_model_mode_follows_the_settings(tmp_path):
    assert make_settings(tmp_path).model_mode == "offline"
    assert make_settings(tmp_path, openai_api_key="sk-test").model_mode == "openai"
    assert make_settings(tmp_path, openai_base_url="http://127.0.0.1:11434/v1").model_mode == "compatible"
    assert make_settings(tmp_path, openai_api_key="sk-test", offline_model=True).model_mode == "offline"
