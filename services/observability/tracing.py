"""OpenTelemetry set-up: always a real tracer (real span ids), exporters only when configured.

Each app owns its TracerProvider (never the global one), so a test process can build many apps.
The Agents SDK is instrumented once per process with OpenInference; its spans are routed to the
provider of the app whose span is their parent (the chat span), see `_RoutingTracer`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from services.core.settings import VERSION, Settings

log = logging.getLogger(__name__)
_AGENTS_SCOPE = "openinference.instrumentation.openai_agents"


@dataclass
class Tracing:
    provider: TracerProvider
    tracer: trace.Tracer
    exporters: list[str]
    phoenix_url: str | None = None  # Phoenix's base URL (for the annotations API), when configured
    include_content: bool = True
    _route: Any = field(default=None, repr=False)

    def receives_spans(self) -> bool:
        """Whether any span processor (an exporter, a test's in-memory one) is attached to this app's provider.

        Without one, the Agents SDK's spans of a run would be built, filled by OpenInference (the model
        input and output serialised into attributes) and dropped: `ChatRunner` then runs the SDK with
        tracing off (~6 % of a hosted-model chat's CPU, benchmarks/bench_capacity.py). The chat span is
        always real, so span ids (feedback, `/v1` completion ids) do not depend on it.
        """
        active = getattr(self.provider, "_active_span_processor", None)
        processors = getattr(active, "_span_processors", None)
        return True if processors is None else bool(processors)

    def shutdown(self) -> None:
        # Stop routing SDK spans here first, so nothing lands on a provider that is shutting down.
        if self._route is not None:
            _release(self._route)
            self._route = None
        try:
            self.provider.force_flush(timeout_millis=3000)
        finally:
            self.provider.shutdown()


def phoenix_base_url(endpoint: str) -> str:
    """`PHOENIX_COLLECTOR_ENDPOINT` may be the server root or its OTLP path; the REST API needs the root."""
    url = endpoint.strip().rstrip("/")
    if url.endswith("/v1/traces"):
        url = url[: -len("/v1/traces")]
    return url


def trace_config(settings: Settings):
    """OpenInference's masking: with content off, prompts, answers, tool args and documents are redacted."""
    from openinference.instrumentation import TraceConfig

    if settings.trace_include_content:
        return TraceConfig()  # still honours the standard OPENINFERENCE_HIDE_* variables
    return TraceConfig(hide_inputs=True, hide_outputs=True)


def setup_tracing(settings: Settings) -> Tracing:
    """A tracer provider owned by this app instance, exporting to Phoenix and/or Arize when configured."""
    from openinference.instrumentation import TracerProvider as OITracerProvider

    config = trace_config(settings)
    project = settings.phoenix_project_name if settings.phoenix_collector_endpoint else settings.arize_project_name
    resource = Resource.create({"service.name": "csharp-ai-buddy-api", "service.version": VERSION,
                                "openinference.project.name": project})
    exporters: list[str] = []
    phoenix_url = None
    provider: TracerProvider | None = None
    if settings.phoenix_collector_endpoint:
        phoenix_url = phoenix_base_url(settings.phoenix_collector_endpoint)
        provider = _phoenix_provider(settings, phoenix_url, resource, config)
        if provider is not None:
            exporters.append("phoenix")
    if provider is None:
        provider = OITracerProvider(resource=resource, config=config)
    if settings.arize_space_id and settings.arize_api_key and _add_arize_exporter(settings, provider):
        exporters.append("arize")
    tracer = provider.get_tracer("csharp_ai_buddy", VERSION)
    tracing = Tracing(provider=provider, tracer=tracer, exporters=exporters, phoenix_url=phoenix_url,
                      include_content=settings.trace_include_content)
    tracing._route = _attach(provider)
    log.info("tracing: exporters=%s, content %s", exporters or "none", "on" if settings.trace_include_content else "hidden")
    return tracing


def _phoenix_provider(settings: Settings, base_url: str, resource: Resource, config) -> TracerProvider | None:
    try:
        from phoenix.otel import register
    except ImportError:
        log.warning("PHOENIX_COLLECTOR_ENDPOINT is set but arize-phoenix-otel is not installed; not exporting")
        return None
    return register(endpoint=f"{base_url}/v1/traces", project_name=settings.phoenix_project_name, batch=True,
                    set_global_tracer_provider=False, protocol="http/protobuf", verbose=False,
                    api_key=settings.phoenix_api_key, resource=resource, config=config)


def _add_arize_exporter(settings: Settings, provider: TracerProvider) -> bool:
    try:
        from arize.otel import BatchSpanProcessor, Endpoint, Transport
    except ImportError:
        log.warning("ARIZE_SPACE_ID/ARIZE_API_KEY are set but arize-otel is not installed; not exporting to Arize")
        return False
    processor = BatchSpanProcessor(space_id=settings.arize_space_id, api_key=settings.arize_api_key,
                                   endpoint=Endpoint.ARIZE, transport=Transport.GRPC)
    kwargs = {"replace_default_processor": False} if hasattr(provider, "_default_processor") else {}
    provider.add_span_processor(processor, **kwargs)
    return True


def span_id_hex(span: trace.Span) -> str:
    return format(span.get_span_context().span_id, "016x")


# --- OpenInference instrumentation of the Agents SDK, shared by every app in the process ---------

@dataclass(eq=False)
class _Route:
    provider: TracerProvider
    tracer: trace.Tracer


_lock = threading.Lock()
_routes: list[_Route] = []
_instrumentor: Any = None


def _route_for(context) -> _Route | None:
    """The app whose span is the parent; else the newest app (an SDK run outside a chat)."""
    parent = trace.get_current_span(context)
    resource = getattr(parent, "resource", None)
    routes = list(_routes)
    for route in routes:
        if resource is not None and route.provider.resource is resource:
            return route
    return routes[-1] if routes else None


class _RoutingTracer(trace.Tracer):
    """What the instrumentor holds: every span it starts goes to the owning app's (masking) tracer."""

    def start_span(self, name, context=None, kind=trace.SpanKind.INTERNAL, attributes=None, links=None,
                   start_time=None, record_exception=True, set_status_on_exception=True) -> trace.Span:
        route = _route_for(context)
        if route is None:
            return trace.INVALID_SPAN
        return route.tracer.start_span(name, context=context, kind=kind, attributes=attributes, links=links,
                                       start_time=start_time, record_exception=record_exception,
                                       set_status_on_exception=set_status_on_exception)

    @contextmanager
    def start_as_current_span(self, name, context=None, kind=trace.SpanKind.INTERNAL, attributes=None, links=None,
                              start_time=None, record_exception=True, set_status_on_exception=True,
                              end_on_exit=True) -> Iterator[trace.Span]:
        span = _RoutingTracer.start_span(self, name, context, kind, attributes, links, start_time,
                                         record_exception, set_status_on_exception)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception) as current:
            yield current


class _RoutingTracerProvider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs) -> trace.Tracer:
        return _RoutingTracer()


def _attach(provider: TracerProvider) -> _Route:
    global _instrumentor
    route = _Route(provider=provider, tracer=provider.get_tracer(_AGENTS_SCOPE))
    with _lock:
        _routes.append(route)
        if _instrumentor is None:
            from agents import set_trace_processors

            # The SDK's own exporter targets OpenAI's trace store; OpenTelemetry carries our traces.
            # Cleared before instrumenting so uninstrumenting later has nothing of it to restore.
            set_trace_processors([])
            try:
                from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

                instrumentor = OpenAIAgentsInstrumentor()
                if not instrumentor.is_instrumented_by_opentelemetry:
                    instrumentor.instrument(tracer_provider=_RoutingTracerProvider())
                    _instrumentor = instrumentor
            except Exception:  # tracing must never stop the app: the chat span still exists
                log.warning("could not instrument the Agents SDK with OpenInference", exc_info=True)
    return route


def _release(route: _Route) -> None:
    global _instrumentor
    with _lock:
        if route in _routes:
            _routes.remove(route)
        if not _routes and _instrumentor is not None:
            try:
                _instrumentor.uninstrument()
            except Exception:
                log.warning("could not uninstrument the Agents SDK", exc_info=True)
            _instrumentor = None
