"""OpenTelemetry set-up: always a real tracer (real span ids), exporters only when configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from services.settings import VERSION, Settings

log = logging.getLogger(__name__)


@dataclass
class Tracing:
    provider: TracerProvider
    tracer: trace.Tracer
    exporters: list[str]

    def shutdown(self) -> None:
        try:
            self.provider.force_flush(timeout_millis=3000)
        finally:
            self.provider.shutdown()


def setup_tracing(settings: Settings) -> Tracing:
    """A tracer provider owned by this app instance (not the global one, so tests can build many)."""
    from agents import set_trace_processors

    # The SDK's own exporter targets OpenAI's trace store; OpenTelemetry carries our traces.
    set_trace_processors([])
    resource = Resource.create({"service.name": "csharp-ai-buddy-api", "service.version": VERSION,
                                "openinference.project.name": settings.phoenix_project_name})
    provider = TracerProvider(resource=resource)
    exporters: list[str] = []
    tracer = provider.get_tracer("csharp_ai_buddy")
    return Tracing(provider=provider, tracer=tracer, exporters=exporters)


def span_id_hex(span: trace.Span) -> str:
    return format(span.get_span_context().span_id, "016x")
