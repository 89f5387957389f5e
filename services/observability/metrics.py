"""Prometheus metrics on a registry owned by one app (no global collectors, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """The app's counters; `services.agent.run` calls the chat_* hooks, routers and middleware the rest."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("http_requests_total", "HTTP requests by route template, method and status",
                                     ["method", "route", "status"], registry=r)
        self.http_duration = Histogram("http_request_duration_seconds", "Time until the response body ended",
                                       ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.chat_streams_started = Counter("chat_streams_started_total", "Chat streams started", registry=r)
        self.chat_streams_completed = Counter("chat_streams_completed_total", "Chat streams that ended with complete",
                                              registry=r)
        self.chat_streams_failed = Counter("chat_streams_failed_total", "Chat streams that ended in error or were cancelled",
                                           ["reason"], registry=r)
        self.chat_first_content = Histogram("chat_time_to_first_content_seconds", "Time from start to the first content line",
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.chat_duration = Histogram("chat_stream_duration_seconds", "Time from start to the complete line",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.tool_calls = Counter("chat_tool_calls_total", "Tool calls made by the agent", ["tool"], registry=r)
        self.chat_tokens = Counter("chat_tokens_total", "Model tokens used by chat turns (failed ones too)",
                                   ["model", "direction"], registry=r)
        self.feedback = Counter("feedback_received_total", "Feedback stored, by type", ["feedback_type"], registry=r)
        self.feedback_deliveries = Counter("feedback_delivery_attempts_total",
                                           "Feedback delivery attempts by target and outcome", ["target", "outcome"],
                                           registry=r)
        self.feedback_pending = Gauge("feedback_undelivered", "Feedback rows not yet delivered, by target", ["target"],
                                      registry=r)
        self.rate_limited = Counter("rate_limited_requests_total", "Requests refused with 429, by limit", ["limit"],
                                    registry=r)
        self.telemetry = Counter("telemetry_events_total", "Telemetry events received, by consent", ["consent"],
                                 registry=r)
        self.chat_admission_refused = Counter("chat_admission_refused_total",
                                              "Chats refused with 503: MAX_CONCURRENT_CHATS streams were running",
                                              registry=r)
        self.chat_streams_active = Gauge("chat_streams_active", "Chat streams admitted and not yet ended", registry=r)

    # hooks called by services.agent.run
    def chat_started(self) -> None:
        self.chat_streams_started.inc()

    def first_content(self, seconds: float) -> None:
        self.chat_first_content.observe(seconds)

    def tool_called(self, name: str) -> None:
        self.tool_calls.labels(tool=_bounded(name)).inc()

    def chat_completed(self, seconds: float) -> None:
        self.chat_streams_completed.inc()
        self.chat_duration.observe(seconds)

    def chat_failed(self, reason: str) -> None:
        self.chat_streams_failed.labels(reason=_bounded(reason)).inc()

    def tokens_used(self, model: str, *, input_tokens: int, output_tokens: int) -> None:
        for direction, count in (("input", input_tokens), ("output", output_tokens)):
            if count > 0:
                self.chat_tokens.labels(model=_bounded(model), direction=direction).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _bounded(label: str) -> str:
    # Tool and exception names come from code, but cap them so a label can never grow without bound.
    return (label or "unknown")[:64]
